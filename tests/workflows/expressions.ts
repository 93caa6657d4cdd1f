/**
 * GitHub Actions expressions (`${{ … }}`), the subset our workflows and actions use, for the wiring
 * test's runner: literals, context paths (`a.b`, `a['b']`), `!`, comparisons, `&&`, `||`,
 * parentheses, and the functions contains, startsWith, endsWith, format, join, toJSON, fromJSON,
 * success, failure, always, cancelled. Semantics follow GitHub's reference
 * (https://docs.github.com/actions/reference/evaluate-expressions-in-workflows-and-actions):
 * `||`/`&&` return an operand, `==` compares strings case-insensitively and coerces mixed types to
 * numbers, a missing property is null.
 *
 * One deliberate difference: objects registered with `strict()` throw on a missing property instead
 * of yielding null. The runner registers `steps`, each step's `outputs`, `inputs` and `env`, so a
 * renamed output or an undeclared input fails the test instead of silently becoming "".
 */

export type Value = null | boolean | number | string | readonly Value[] | { readonly [key: string]: Value };
export type Contexts = Readonly<Record<string, Value>>;

export class ExpressionError extends Error {
  override name = "ExpressionError";
}

const strictObjects = new WeakSet<object>();

/** Mark an object so that reading a property it lacks throws (see the file comment). */
export function strict<T extends Record<string, Value>>(object: T, what: string): T {
  strictObjects.add(object);
  strictNames.set(object, what);
  return object;
}
const strictNames = new WeakMap<object, string>();

export interface EvalOptions {
  /** For success()/failure()/cancelled(): did an earlier step of this job (or action) fail? */
  failed?: boolean;
}

type Token =
  | { kind: "num"; value: number }
  | { kind: "str"; value: string }
  | { kind: "ident"; value: string }
  | { kind: "op"; value: string };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i] ?? "";
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "'") {
      let value = "";
      i++;
      for (;;) {
        if (i >= source.length) throw new ExpressionError(`unterminated string in: ${source}`);
        if (source[i] === "'") {
          if (source[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += source[i];
        i++;
      }
      tokens.push({ kind: "str", value });
      continue;
    }
    const number = /^(?:0x[0-9a-f]+|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)/i.exec(source.slice(i));
    if (number && !/[A-Za-z_]/.test(source[i + number[0].length] ?? "")) {
      tokens.push({ kind: "num", value: Number(number[0]) });
      i += number[0].length;
      continue;
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(source.slice(i));
    if (ident) {
      tokens.push({ kind: "ident", value: ident[0] });
      i += ident[0].length;
      continue;
    }
    const op = /^(?:==|!=|<=|>=|&&|\|\||[!<>().[\],*])/.exec(source.slice(i));
    if (op) {
      tokens.push({ kind: "op", value: op[0] });
      i += op[0].length;
      continue;
    }
    throw new ExpressionError(`unexpected '${c}' in: ${source}`);
  }
  return tokens;
}

type Ast =
  | { type: "lit"; value: Value }
  | { type: "ctx"; name: string }
  | { type: "prop"; target: Ast; key: Ast; path: string }
  | { type: "not"; operand: Ast }
  | { type: "bin"; op: string; left: Ast; right: Ast }
  | { type: "call"; name: string; args: Ast[] };

function describe(ast: Ast): string {
  switch (ast.type) {
    case "ctx":
      return ast.name;
    case "prop":
      return ast.path;
    default:
      return "(expression)";
  }
}

function parse(source: string): Ast {
  const tokens = tokenize(source);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isOp = (value: string): boolean => {
    const t = peek();
    return t?.kind === "op" && t.value === value;
  };
  const expectOp = (value: string): void => {
    if (!isOp(value)) throw new ExpressionError(`expected '${value}' in: ${source}`);
    pos++;
  };

  const primary = (): Ast => {
    const t = peek();
    if (t === undefined) throw new ExpressionError(`unexpected end of: ${source}`);
    pos++;
    if (t.kind === "num" || t.kind === "str") return { type: "lit", value: t.value };
    if (t.kind === "op" && t.value === "(") {
      const inner = or();
      expectOp(")");
      return inner;
    }
    if (t.kind === "ident") {
      if (t.value === "true" || t.value === "false") return { type: "lit", value: t.value === "true" };
      if (t.value === "null") return { type: "lit", value: null };
      if (isOp("(")) {
        pos++;
        const args: Ast[] = [];
        if (!isOp(")")) {
          args.push(or());
          while (isOp(",")) {
            pos++;
            args.push(or());
          }
        }
        expectOp(")");
        return { type: "call", name: t.value.toLowerCase(), args };
      }
      return { type: "ctx", name: t.value };
    }
    throw new ExpressionError(`unexpected '${t.value}' in: ${source}`);
  };

  const postfix = (): Ast => {
    let node = primary();
    for (;;) {
      if (isOp(".")) {
        pos++;
        const t = peek();
        if (t?.kind !== "ident") throw new ExpressionError(`expected a property name in: ${source}`);
        pos++;
        node = {
          type: "prop",
          target: node,
          key: { type: "lit", value: t.value },
          path: `${describe(node)}.${t.value}`,
        };
      } else if (isOp("[")) {
        pos++;
        const key = or();
        expectOp("]");
        const label = key.type === "lit" ? String(key.value) : "…";
        node = { type: "prop", target: node, key, path: `${describe(node)}['${label}']` };
      } else {
        return node;
      }
    }
  };

  const unary = (): Ast => {
    if (isOp("!")) {
      pos++;
      return { type: "not", operand: unary() };
    }
    return postfix();
  };

  const binary = (next: () => Ast, ops: readonly string[]) => (): Ast => {
    let left = next();
    for (;;) {
      const t = peek();
      if (t?.kind !== "op" || !ops.includes(t.value)) return left;
      pos++;
      left = { type: "bin", op: t.value, left, right: next() };
    }
  };
  const comparison = binary(unary, ["<", "<=", ">", ">="]);
  const equality = binary(comparison, ["==", "!="]);
  const and = binary(equality, ["&&"]);
  const or = binary(and, ["||"]);

  const ast = or();
  if (pos !== tokens.length) throw new ExpressionError(`unexpected '${peek()?.value}' in: ${source}`);
  return ast;
}

function truthy(value: Value): boolean {
  return !(value === null || value === false || value === 0 || value === "" || Number.isNaN(value));
}

function toNumber(value: Value): number {
  if (value === null) return 0;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "number") return value;
  if (typeof value === "string") return value.trim() === "" ? 0 : Number(value);
  return Number.NaN;
}

/** How GitHub turns a value into text: in `${{ }}` interpolation, format() and join(). */
export function toText(value: Value): string {
  if (value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "boolean" || typeof value === "number") return String(value);
  return JSON.stringify(value, null, 2);
}

function equal(a: Value, b: Value): boolean {
  if (typeof a === "string" && typeof b === "string") return a.toLowerCase() === b.toLowerCase();
  const isObject = (v: Value): boolean => typeof v === "object" && v !== null;
  if (isObject(a) || isObject(b)) return a === b;
  if (typeof a === typeof b) return a === b;
  return toNumber(a) === toNumber(b);
}

function compare(op: string, a: Value, b: Value): boolean {
  const [x, y] =
    typeof a === "string" && typeof b === "string"
      ? [a.toLowerCase(), b.toLowerCase()]
      : [toNumber(a), toNumber(b)];
  switch (op) {
    case "<":
      return x < y;
    case "<=":
      return x <= y;
    case ">":
      return x > y;
    default:
      return x >= y;
  }
}

function isRecord(value: Value): value is { readonly [key: string]: Value } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fromJson(text: string): Value {
  const parsed: unknown = JSON.parse(text);
  const convert = (v: unknown): Value => {
    if (v === null || typeof v === "boolean" || typeof v === "number" || typeof v === "string") return v;
    if (Array.isArray(v)) return v.map(convert);
    if (typeof v === "object") {
      const out: Record<string, Value> = {};
      for (const [key, inner] of Object.entries(v)) out[key] = convert(inner);
      return out;
    }
    return null;
  };
  return convert(parsed);
}

function evalAst(ast: Ast, ctx: Contexts, opts: EvalOptions): Value {
  switch (ast.type) {
    case "lit":
      return ast.value;
    case "ctx": {
      if (!Object.hasOwn(ctx, ast.name)) throw new ExpressionError(`unknown context '${ast.name}'`);
      return ctx[ast.name] ?? null;
    }
    case "prop": {
      const target = evalAst(ast.target, ctx, opts);
      const key = evalAst(ast.key, ctx, opts);
      if (Array.isArray(target)) return target[toNumber(key)] ?? null;
      if (!isRecord(target)) return null;
      const name = toText(key);
      if (Object.hasOwn(target, name)) return target[name] ?? null;
      if (strictObjects.has(target)) {
        const what = strictNames.get(target) ?? describe(ast.target);
        const known = Object.keys(target).join(", ") || "none";
        throw new ExpressionError(`${ast.path}: ${what} has no '${name}' (it has: ${known})`);
      }
      return null;
    }
    case "not":
      return !truthy(evalAst(ast.operand, ctx, opts));
    case "bin": {
      if (ast.op === "&&") {
        const left = evalAst(ast.left, ctx, opts);
        return truthy(left) ? evalAst(ast.right, ctx, opts) : left;
      }
      if (ast.op === "||") {
        const left = evalAst(ast.left, ctx, opts);
        return truthy(left) ? left : evalAst(ast.right, ctx, opts);
      }
      const left = evalAst(ast.left, ctx, opts);
      const right = evalAst(ast.right, ctx, opts);
      if (ast.op === "==") return equal(left, right);
      if (ast.op === "!=") return !equal(left, right);
      return compare(ast.op, left, right);
    }
    case "call": {
      const args = ast.args.map((arg) => evalAst(arg, ctx, opts));
      const text = (index: number): string => toText(args[index] ?? null);
      switch (ast.name) {
        case "success":
          return !opts.failed;
        case "failure":
          return opts.failed === true;
        case "always":
          return true;
        case "cancelled":
          return false;
        case "contains": {
          const haystack = args[0] ?? null;
          if (Array.isArray(haystack)) return haystack.some((item) => equal(item, args[1] ?? null));
          return text(0).toLowerCase().includes(text(1).toLowerCase());
        }
        case "startswith":
          return text(0).toLowerCase().startsWith(text(1).toLowerCase());
        case "endswith":
          return text(0).toLowerCase().endsWith(text(1).toLowerCase());
        case "format":
          return text(0)
            .replace(/\{(\d+)\}/g, (_m, index: string) => text(Number(index) + 1))
            .replaceAll("{{", "{")
            .replaceAll("}}", "}");
        case "join": {
          const list = args[0] ?? null;
          const separator = args.length > 1 ? text(1) : ",";
          return Array.isArray(list) ? list.map(toText).join(separator) : text(0);
        }
        case "tojson":
          return JSON.stringify(args[0] ?? null, null, 2);
        case "fromjson":
          return fromJson(text(0));
        default:
          throw new ExpressionError(`the runner does not implement ${ast.name}()`);
      }
    }
  }
}

/** Evaluate one expression (the text inside `${{ }}`). */
export function evaluate(source: string, ctx: Contexts, opts: EvalOptions = {}): Value {
  return evalAst(parse(source), ctx, opts);
}

/** A string with `${{ }}` parts replaced by their values as text (what `env:` and `with:` see). */
export function interpolate(text: string, ctx: Contexts, opts: EvalOptions = {}): string {
  return text.replace(/\$\{\{([\s\S]*?)\}\}/g, (_m, source: string) => toText(evaluate(source, ctx, opts)));
}

/**
 * A value that may be one whole expression: `${{ a == b }}` keeps its type (a boolean), anything
 * else is interpolated into a string — as GitHub does for `with:`, `env:` and `outputs.*.value`.
 */
export function evaluateValue(text: string, ctx: Contexts, opts: EvalOptions = {}): Value {
  const whole = /^\s*\$\{\{([\s\S]*?)\}\}\s*$/.exec(text);
  if (whole && !whole[1]?.includes("}}")) return evaluate(whole[1] ?? "", ctx, opts);
  return interpolate(text, ctx, opts);
}

/** An `if:` condition: with or without `${{ }}`; no condition means success(). */
export function evaluateCondition(
  condition: string | undefined,
  ctx: Contexts,
  opts: EvalOptions = {},
): boolean {
  if (condition === undefined || condition.trim() === "") return !opts.failed;
  const whole = /^\s*\$\{\{([\s\S]*?)\}\}\s*$/.exec(condition);
  const source = whole ? (whole[1] ?? "") : condition;
  // A condition that calls no status function is implicitly `success() && (…)`.
  const usesStatus = /\b(success|failure|always|cancelled)\s*\(/i.test(source);
  const value = truthy(evaluate(source, ctx, opts));
  return usesStatus ? value : !opts.failed && value;
}
