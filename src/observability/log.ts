/** One structured log record: what happened to one event, or a lifecycle message. */
export type LogRecord = Record<string, string | number | boolean | undefined>;

/** Writes JSON lines. Callers pass only what is safe to log: ids, names, outcomes — never tokens or event data. */
export type Logger = (record: LogRecord) => void;

/**
 * JSON lines to stdout, gathered and written once per turn of the event loop: a write to a pipe is a
 * synchronous system call on the request path. The saving grows with load (at ~150 events/s a write carried
 * 1.5–1.8 lines; bench/analysis.md). Lines keep their order; `flushLogs()` writes what is pending (before exit).
 */
export const jsonLogger: Logger = (record) => {
  pending.push(JSON.stringify({ time: new Date().toISOString(), ...record }));
  if (pending.length === 1) setTimeout(flushLogs, 0);
};

const pending: string[] = [];

/** Where gathered lines go. Entrypoints may set their runtime's raw stdout write; `console.log` works everywhere. */
let output = (text: string): void => console.log(text.slice(0, -1));

export function setLogOutput(write: (text: string) => void): void {
  output = write;
}

export function flushLogs(): void {
  if (pending.length === 0) return;
  const text = pending.join("\n") + "\n";
  pending.length = 0;
  output(text);
}
