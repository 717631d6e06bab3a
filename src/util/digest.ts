/**
 * The one hash of the project: SHA-256 of text, hex. Synchronous (names and ids derived from requests are computed
 * inside synchronous builders; Web Crypto's digest is async), so the core's default is `@noble/hashes` (audited,
 * pure JS, any runtime). Every entrypoint hands over its runtime's native SHA-256 at start instead: on the hot path
 * (two hashes per event) the pure-JS one cost a freshly started process measurable CPU until its JIT warmed up.
 * Inputs are short (ids, names, tokens).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

/** SHA-256 of a string (UTF-8), as 64 lowercase hex digits. */
export type Sha256Hex = (text: string) => string;

let hash: Sha256Hex = (text) => bytesToHex(sha256(utf8ToBytes(text)));

/** The runtime's own SHA-256, set by its entrypoint before the service starts. */
export function useSha256(native: Sha256Hex): void {
  hash = native;
}

/** SHA-256 of `text` (UTF-8), as 64 hex digits. */
export function sha256Hex(text: string): string {
  return hash(text);
}

/** The hash of several parts, kept apart by NUL (which ids and names never contain): ("a","bc") ≠ ("ab","c"). */
export function digest(...parts: string[]): string {
  return hash(parts.join("\0"));
}
