/**
 * The one hash of the project: SHA-256 of text, hex, from `@noble/hashes` (audited, synchronous on every
 * runtime, no `node:crypto`; Web Crypto's digest is async). Names and ids derived from requests are computed
 * where they are needed, inside synchronous builders. Inputs are short (ids, names, tokens).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

/** SHA-256 of `text` (UTF-8), as 64 hex digits. */
export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

/** The hash of several parts, kept apart by NUL (which ids and names never contain): ("a","bc") ≠ ("ab","c"). */
export function digest(...parts: string[]): string {
  return sha256Hex(parts.join("\0"));
}
