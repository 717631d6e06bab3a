/**
 * The edge-style core, enforced (`npm run check:edge`, run by test/run.sh's typecheck step): nothing under src/
 * except the runtime edges imports a Node module or touches a Node global, so the core runs on any Fetch-API
 * runtime (Web Crypto, TextEncoder, atob, fetch). A tsconfig without Node types cannot prove it: the cloudevents
 * typings reference them. This walks each core file's syntax tree instead, so shadowing or a comment can't fool it.
 */
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The runtime edges: entrypoints, HTTP-serving and TLS adapters, and the kube loaders that read files. */
const EDGES = [/^src\/main\//, /^src\/adapter\//, /^src\/kube\/(kubeconfig|in-cluster|connect)\.ts$/];
/** Node-only packages (a Fetch-API runtime has neither). */
const NODE_PACKAGES = new Set(["undici", "@hono/node-server"]);
/** Node globals with a Web equivalent the core uses instead. */
const NODE_GLOBALS = new Set(["Buffer", "process", "require", "module", "__dirname", "__filename", "global", "setImmediate", "clearImmediate"]);

function coreFiles(dir = "src"): string[] {
  return readdirSync(resolve(repo, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return coreFiles(path);
    return path.endsWith(".ts") && !EDGES.some((edge) => edge.test(path)) ? [path] : [];
  });
}

function isNodeModule(specifier: string): boolean {
  const name = specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]!;
  return specifier.startsWith("node:") || builtinModules.includes(name) || NODE_PACKAGES.has(name);
}

/** The problems in one file: Node imports, and uses of Node globals that nothing in the file declares. */
export function problems(path: string, text: string): string[] {
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const declared = new Set<string>();
  const found: string[] = [];
  const where = (node: ts.Node) => `${path}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const specifier = node.moduleSpecifier.text;
      if (isNodeModule(specifier)) found.push(`${where(node)}: imports ${specifier}`);
      const target = specifier.startsWith(".") ? relative(repo, resolve(repo, dirname(path), specifier)) : "";
      const typeOnly = ts.isImportDeclaration(node) ? node.importClause?.isTypeOnly : node.isTypeOnly;
      if (!typeOnly && EDGES.some((edge) => edge.test(target))) found.push(`${where(node)}: imports the runtime edge ${target}`);
    }
    if ((ts.isVariableDeclaration(node) || ts.isParameter(node) || ts.isFunctionDeclaration(node)) && node.name && ts.isIdentifier(node.name)) {
      declared.add(node.name.text);
    }
    if (ts.isIdentifier(node) && NODE_GLOBALS.has(node.text)) {
      const parent = node.parent;
      const isMemberName = (ts.isPropertyAccessExpression(parent) && parent.name === node) || ts.isPropertyAssignment(parent) && parent.name === node ||
        ts.isPropertySignature(parent) || ts.isPropertyDeclaration(parent) || ts.isImportSpecifier(parent);
      if (!isMemberName) found.push(`${where(node)}: uses the Node global ${node.text}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.filter((line) => !declared.has(line.slice(line.lastIndexOf(" ") + 1)));
}

if (import.meta.main ?? process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = coreFiles();
  const all = files.flatMap((path) => problems(path, readFileSync(resolve(repo, path), "utf8")));
  for (const line of all) console.error(line);
  console.error(all.length ? `edge-style core: ${all.length} problem(s)` : `edge-style core: ${files.length} files, no Node module, global or runtime edge`);
  process.exit(all.length ? 1 : 0);
}
