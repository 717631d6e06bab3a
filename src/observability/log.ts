/** One structured log record: what happened to one event, or a lifecycle message. */
export type LogRecord = Record<string, string | number | boolean | undefined>;

/** Writes JSON lines. Callers pass only what is safe to log: ids, names, outcomes — never tokens or event data. */
export type Logger = (record: LogRecord) => void;

export const jsonLogger: Logger = (record) => {
  console.log(JSON.stringify({ time: new Date().toISOString(), ...record }));
};

export const silentLogger: Logger = () => {};
