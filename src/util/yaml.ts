/**
 * YAML (of which JSON is a part) for the kubeconfig and the client pod template. The `yaml` package is loaded on
 * first use, so a process that needs neither — in a cluster, with its service account and no template — never
 * evaluates it: it was a sixth of the single executable's idle memory. A runtime with a parser of its own (the
 * executable: Bun's) hands it over at start instead.
 */

/** One document's value; throws on malformed text. (Several documents: the package throws, Bun's lists them.) */
export type YamlParser = (text: string) => unknown;

let parser: YamlParser | undefined;

/** The runtime's own parser, set by its entrypoint before anything is read. */
export function useYamlParser(parse: YamlParser): void {
  parser = parse;
}

export async function parseYaml(text: string): Promise<unknown> {
  parser ??= (await import("yaml")).parse;
  return parser(text);
}
