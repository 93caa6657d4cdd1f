/**
 * Editing flake.nix: the ref in one input's URL, and nothing else. An input that follows releases
 * moves by changing its tag where flake.nix names it (`github:o/r/v0.1.17` → `…/v0.1.18`); comments,
 * formatting and every other byte stay as they are.
 *
 * This is not a Nix evaluator. It reads the attribute sets flake.nix declares literally — the root set
 * and the sets bound to attribute paths in it, which is every form Nix accepts for inputs
 * (`inputs.x.url = "…"`, `inputs.x = { url = "…"; }`, `inputs = { x.url = "…"; }`) — and refuses,
 * with line numbers, whatever it cannot read safely: a URL built by interpolation, one with escape
 * sequences, an unquoted URI, the same URL string shared by two inputs.
 */
import { UsageError } from "../core/errors.ts";
import { LOCK_COMMAND } from "./lock.ts";

type Token =
  | { kind: "name"; text: string; start: number }
  | { kind: "string"; text: string; start: number; end: number; plain: boolean }
  | { kind: "punct"; text: string; start: number };

/** A string literal or name as an attribute path segment: a quoted name must be plain to count. */
type PathSegment = string | undefined;

/** One `path = value;` binding found in a literal attribute set. */
interface Binding {
  path: PathSegment[];
  /** The value when it is exactly one string literal, else undefined. */
  value: Extract<Token, { kind: "string" }> | undefined;
  start: number;
}

const NAME = /[A-Za-z_][A-Za-z0-9_'-]*/y;

/** The tokens of Nix source that structure matters for; comments and whitespace are dropped. */
function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] ?? "";
    if (/\s/.test(c)) i++;
    else if (c === "#") i = lineEnd(src, i);
    else if (src.startsWith("/*", i)) i = closeOf(src, "*/", i + 2);
    else if (c === '"') {
      const end = skipDoubleQuoted(src, i + 1);
      const body = src.slice(i + 1, end - 1);
      const plain = !body.includes("\\") && !body.includes("${");
      tokens.push({ kind: "string", text: body, start: i, end, plain });
      i = end;
    } else if (src.startsWith("''", i)) {
      const end = skipIndented(src, i + 2);
      tokens.push({ kind: "string", text: src.slice(i + 2, end - 2), start: i, end, plain: false });
      i = end;
    } else {
      NAME.lastIndex = i;
      const name = NAME.exec(src);
      if (name !== null) {
        tokens.push({ kind: "name", text: name[0], start: i });
        i += name[0].length;
      } else {
        tokens.push({ kind: "punct", text: c, start: i });
        i++;
      }
    }
  }
  return tokens;
}

function lineEnd(src: string, i: number): number {
  const end = src.indexOf("\n", i);
  return end === -1 ? src.length : end;
}

function closeOf(src: string, close: string, from: number): number {
  const end = src.indexOf(close, from);
  if (end === -1) throw new Error("unterminated comment");
  return end + close.length;
}

/** Index just past the closing quote of a "…" string whose body starts at `i`. */
function skipDoubleQuoted(src: string, i: number): number {
  while (i < src.length) {
    const c = src[i];
    if (c === "\\") i += 2;
    else if (c === '"') return i + 1;
    else if (src.startsWith("${", i)) i = skipInterpolation(src, i + 2);
    else i++;
  }
  throw new Error("unterminated string");
}

/** Index just past the closing '' of an indented string whose body starts at `i`. */
function skipIndented(src: string, i: number): number {
  while (i < src.length) {
    if (src.startsWith("'''", i) || src.startsWith("''$", i) || src.startsWith("''\\", i)) i += 3;
    else if (src.startsWith("''", i)) return i + 2;
    else if (src.startsWith("${", i)) i = skipInterpolation(src, i + 2);
    else i++;
  }
  throw new Error("unterminated indented string");
}

/** Index just past the `}` that closes an interpolation whose expression starts at `i`. */
function skipInterpolation(src: string, i: number): number {
  let depth = 1;
  while (i < src.length) {
    const c = src[i];
    if (c === '"') i = skipDoubleQuoted(src, i + 1);
    else if (src.startsWith("''", i)) i = skipIndented(src, i + 2);
    else if (c === "#") i = lineEnd(src, i);
    else if (src.startsWith("/*", i)) i = closeOf(src, "*/", i + 2);
    else {
      if (c === "{") depth++;
      if (c === "}" && --depth === 0) return i + 1;
      i++;
    }
  }
  throw new Error("unterminated interpolation");
}

const OPEN = new Set(["{", "[", "("]);
const CLOSE = new Set(["}", "]", ")"]);

/** Index of the token after the value that starts at `i`: at the `;` ending it, depth 0. */
function skipValue(tokens: readonly Token[], i: number): number {
  let depth = 0;
  for (; i < tokens.length; i++) {
    const token = tokens[i];
    if (token?.kind !== "punct") continue;
    if (OPEN.has(token.text)) depth++;
    else if (CLOSE.has(token.text)) {
      if (depth === 0) return i;
      depth--;
    } else if (token.text === ";" && depth === 0) return i;
  }
  return i;
}

/**
 * The bindings of the attribute set whose `{` is at `open`, and of the sets bound inside it, with
 * `prefix` before their paths; returns the index just past its `}`. A set that turns out not to be
 * one (a function's argument pattern) yields nothing.
 */
function readSet(tokens: readonly Token[], open: number, prefix: PathSegment[], out: Binding[]): number {
  let i = open + 1;
  const found: Binding[] = [];
  while (i < tokens.length) {
    const token = tokens[i];
    if (token?.kind === "punct" && token.text === "}") {
      out.push(...found);
      return i + 1;
    }
    if (token?.kind === "name" && token.text === "inherit") {
      i = skipValue(tokens, i) + 1;
      continue;
    }
    const path: PathSegment[] = [];
    const start = token?.start ?? 0;
    while (i < tokens.length) {
      const part = tokens[i];
      if (part?.kind === "name") path.push(part.text);
      else if (part?.kind === "string") path.push(part.plain ? part.text : undefined);
      else break;
      i++;
      const dot = tokens[i];
      if (dot?.kind !== "punct" || dot.text !== ".") break;
      i++;
    }
    const eq = tokens[i];
    if (path.length === 0 || eq?.kind !== "punct" || eq.text !== "=") {
      // Not `path = …`: an argument pattern `{ self, ... }:` or something else; nothing here is a binding.
      return skipValue(tokens, open + 1) + 1;
    }
    i++;
    const value = tokens[i];
    const next = tokens[i + 1];
    if (value?.kind === "punct" && value.text === "{") {
      i = readSet(tokens, i, [...prefix, ...path], out);
    } else if (value?.kind === "string" && next?.kind === "punct" && next.text === ";") {
      found.push({ path: [...prefix, ...path], value, start });
      i++;
    } else {
      found.push({ path: [...prefix, ...path], value: undefined, start });
    }
    i = skipValue(tokens, i);
    if (tokens[i]?.kind === "punct" && tokens[i]?.text === ";") i++;
  }
  out.push(...found);
  return i;
}

/** Every binding of flake.nix's literal attribute sets, or an error when the file does not tokenize. */
function bindings(src: string, file: string): Binding[] {
  let tokens: Token[];
  try {
    tokens = tokenize(src);
  } catch (error) {
    throw new UsageError(
      `${file} could not be read (${error instanceof Error ? error.message : String(error)}); fix its syntax and retry`,
    );
  }
  const root = tokens[0];
  if (root?.kind !== "punct" || root.text !== "{") {
    throw new UsageError(
      `${file} does not start with an attribute set, so flake-bump cannot edit it safely; edit it by hand`,
    );
  }
  const out: Binding[] = [];
  readSet(tokens, 0, [], out);
  return out.sort((a, b) => a.start - b.start);
}

function lineOf(src: string, offset: number): number {
  let line = 1;
  for (let i = src.indexOf("\n"); i !== -1 && i < offset; i = src.indexOf("\n", i + 1)) line++;
  return line;
}

/** Where an input's URL string sits in flake.nix: the offsets of its text (inside the quotes). */
export interface UrlSite {
  url: string;
  start: number;
  end: number;
  line: number;
}

const isUrlOf = (path: PathSegment[], name?: string): boolean =>
  path.length === 3 && path[0] === "inputs" && path[2] === "url" && (name === undefined || path[1] === name);

/**
 * The one string literal that is input `name`'s URL in `src`, or a UsageError naming the lines when
 * there is none, more than one, one that is not a plain literal, or one another input shares.
 */
export function inputUrl(src: string, name: string, file = "flake.nix"): UrlSite {
  const all = bindings(src, file);
  const mine = all.filter((b) => isUrlOf(b.path, name));
  const lines = (list: readonly Binding[]) => list.map((b) => lineOf(src, b.start)).join(" and ");
  if (mine.length === 0) {
    throw new UsageError(
      `${file} has no 'inputs.${name}.url' that flake-bump can read; edit the input's ref by hand`,
    );
  }
  if (mine.length > 1) {
    throw new UsageError(
      `${file} sets input '${name}''s url more than once (lines ${lines(mine)}); keep one and retry`,
    );
  }
  const [binding] = mine;
  const value = binding?.value;
  if (binding === undefined || value === undefined || !value.plain) {
    throw new UsageError(
      `${file} line ${lines(mine)}: input '${name}''s url is not one plain string literal (no escapes or interpolation), so flake-bump cannot edit it safely; edit it by hand`,
    );
  }
  const shared = all.filter((b) => b !== binding && isUrlOf(b.path) && b.value?.text === value.text);
  if (shared.length > 0) {
    const others = shared.map((b) => `'${b.path[1]}'`).join(", ");
    throw new UsageError(
      `${file} uses the url "${value.text}" for input '${name}' and for ${others} (lines ${lines([binding, ...shared])}); flake-bump moves one input at a time, so edit these by hand`,
    );
  }
  return { url: value.text, start: value.start + 1, end: value.end - 1, line: lineOf(src, value.start) };
}

/** The ref part of a flake URL, as offsets into it, for `github:o/r/REF`, `?ref=REF` and `git+…?ref=refs/tags/REF`. */
export function urlRef(url: string): { ref: string; start: number; end: number } | undefined {
  const query = url.indexOf("?");
  const path = query === -1 ? url : url.slice(0, query);
  const refParam = query === -1 ? undefined : /(?:^|&)ref=([^&#]*)/.exec(url.slice(query + 1));
  if (refParam?.[1] !== undefined) {
    const valueStart = query + 1 + refParam.index + refParam[0].indexOf("=") + 1;
    const prefix = refParam[1].startsWith("refs/tags/") ? "refs/tags/".length : 0;
    const ref = refParam[1].slice(prefix);
    return ref === "" || ref.includes("%")
      ? undefined
      : { ref, start: valueStart + prefix, end: valueStart + refParam[1].length };
  }
  const forge = /^(?:github|gitlab|sourcehut):[^/]+\/[^/]+\/(.+)$/.exec(path);
  if (forge?.[1] === undefined || forge[1].includes("%")) return undefined;
  return { ref: forge[1], start: path.length - forge[1].length, end: path.length };
}

/**
 * `src` with input `name`'s ref changed from `from` to `to`, every other byte as it was. Refuses
 * (UsageError, with the line) when the URL names no ref or another ref than `from`.
 */
export function withInputRef(
  src: string,
  name: string,
  from: string,
  to: string,
  file = "flake.nix",
): string {
  const site = inputUrl(src, name, file);
  const ref = urlRef(site.url);
  if (ref === undefined || ref.ref !== from) {
    throw new UsageError(
      `${file} line ${site.line}: input '${name}''s url "${site.url}" does not name the ref '${from}' that flake.lock has; lock the flake once (\`${LOCK_COMMAND}\`) and retry`,
    );
  }
  return src.slice(0, site.start + ref.start) + to + src.slice(site.start + ref.end);
}
