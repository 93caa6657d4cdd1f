/**
 * GitHub's own OpenAPI description as the fake's referee: every request the fake receives and every
 * response it sends is checked against it, so the fake cannot drift into accepting what GitHub rejects
 * or answering what GitHub never would.
 */
import { fileURLToPath } from "node:url";
import addFormats from "ajv-formats";
import OpenAPIBackend, { type Document, type Operation } from "openapi-backend";

/** What the validator knows about one documented operation. */
export interface SpecOperation {
  operationId: string;
  method: string;
  /** The path template exactly as documented, e.g. `/repos/{owner}/{repo}/compare/{base}...{head}`. */
  template: string;
  /** Response statuses the description documents, as written (`200`, `4XX`, `default`). */
  statuses: string[];
  /** The operation's page on docs.github.com: GitHub puts it in every error's `documentation_url`. */
  docsUrl: string;
}

/** The parts of a request the description constrains, already split and decoded. */
export interface RequestParts {
  pathParams: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** Parsed JSON body, or undefined when the request had none. */
  body: unknown;
}

// Statuses GitHub can answer on any operation whether or not the description lists them: a bad token,
// a rate limit or missing permission, a repository that is not there or not visible, and server
// faults (the last three only come from fault injection).
const UNIVERSAL_STATUSES = new Set([401, 403, 404, 500, 502, 503]);

function isDocument(value: unknown): value is Document {
  return (
    typeof value === "object" &&
    value !== null &&
    "openapi" in value &&
    typeof value.openapi === "string" &&
    "paths" in value &&
    typeof value.paths === "object"
  );
}

/**
 * OpenAPI 3.0 puts `nullable: true` beside `oneOf`/`allOf`/`$ref` without a `type` (GitHub does, e.g.
 * a commit's `author`); Ajv only understands `nullable` next to `type` and throws on compiling the
 * rest. Rewrites those schemas, in place, to the equivalent `anyOf: [{ type: "null" }, schema]`.
 */
function rewriteTypelessNullable(node: unknown): number {
  if (typeof node !== "object" || node === null) return 0;
  let rewritten = 0;
  for (const child of Object.values(node)) rewritten += rewriteTypelessNullable(child);
  if (Array.isArray(node) || !("nullable" in node) || node.nullable !== true || "type" in node)
    return rewritten;
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key !== "nullable") rest[key] = value;
    Reflect.deleteProperty(node, key);
  }
  Object.assign(node, { anyOf: [{ type: "null" }, rest] });
  return rewritten + 1;
}

function docsUrlOf(operation: Operation): string {
  return operation.externalDocs?.url ?? "https://docs.github.com/rest";
}

interface Route {
  method: string;
  path: string;
  pattern: RegExp;
  operationId: string | undefined;
}

function segmentCount(path: string): number {
  return path.split("/").length;
}

function formatErrors(errors: readonly { instancePath: string; message?: string }[]): string[] {
  return errors.map((error) => `${error.instancePath || "(root)"} ${error.message ?? "is invalid"}`);
}

export class SpecValidator {
  private readonly byId = new Map<string, SpecOperation>();

  /**
   * Every operation's path template as a regex, most literal characters first (the router's order),
   * grouped by segment count: a parameter matches exactly one segment, so a path can only match
   * templates with as many segments as it has, and a request tests ~100 patterns instead of ~1,000.
   */
  private readonly routesBySegments = new Map<number, Route[]>();

  private constructor(
    private readonly backend: OpenAPIBackend,
    /** Milliseconds spent reading and preparing the description. */
    readonly loadMs: number,
  ) {
    const operations = backend.router.getOperations();
    // openapi-backend flattens the whole description again on every getOperations() (twice per
    // matched request, once per validation) and compiles a regex per operation per match: with
    // GitHub's ~1,000 operations that was 10–40 ms a request. The description never changes here.
    backend.router.getOperations = () => operations;
    const literal = (path: string) => path.replace(/\{.*?\}/g, "").length;
    const routes = operations
      .map((operation) => ({
        method: operation.method,
        path: operation.path,
        // As openapi-backend's pathTemplateToPattern: a parameter is one segment, the rest literal.
        pattern: new RegExp(
          `^${operation.path
            .split(/\{[^}]+\}/)
            .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
            .join("[^/]+")}$`,
        ),
        operationId: operation.operationId,
      }))
      .sort((a, b) => literal(b.path) - literal(a.path));
    for (const route of routes) {
      const segments = segmentCount(route.path);
      const group = this.routesBySegments.get(segments) ?? [];
      group.push(route);
      this.routesBySegments.set(segments, group);
    }
    for (const operation of operations) {
      const { operationId } = operation;
      if (operationId === undefined) continue;
      this.byId.set(operationId, {
        operationId,
        method: operation.method.toUpperCase(),
        template: operation.path,
        statuses: Object.keys(operation.responses ?? {}),
        docsUrl: docsUrlOf(operation),
      });
    }
  }

  /**
   * Reads `@octokit/openapi`'s api.github.com description. Validators are compiled lazily per
   * operation (openapi-backend's quick mode); that is what keeps loading around a few hundred ms.
   */
  static async load(): Promise<SpecValidator> {
    const started = performance.now();
    const file = fileURLToPath(import.meta.resolve("@octokit/openapi/generated/api.github.com.json"));
    const definition: unknown = await Bun.file(file).json();
    if (!isDocument(definition)) throw new Error(`${file} is not an OpenAPI description`);
    rewriteTypelessNullable(definition);
    const backend = new OpenAPIBackend({
      definition,
      quick: true,
      // GitHub's description uses keywords (nullable, x-github, examples) Ajv's strict mode refuses.
      // Each validator is compiled once per process and run a few dozen times, so compiling is most
      // of validation's cost: the schemas are GitHub's published ones (not re-checked against the
      // JSON Schema meta-schema), and the generated code is used as generated (no optimizing pass).
      // Together that roughly halves compile time; what a validator accepts is the same.
      ajvOpts: { strict: false, validateSchema: false, code: { optimize: false } },
      // Without ajv-formats, `format: uri` and `format: date-time` are silently ignored.
      customizeAjv: (ajv) => {
        addFormats(ajv);
        // GitHub's own formats: "owner/name" for pulls' head_repo, and the epoch seconds of rate-limit headers.
        ajv.addFormat("repo.nwo", /^[\w.-]+\/[\w.-]+$/);
        ajv.addFormat("timestamp", { type: "number", validate: Number.isInteger });
        return ajv;
      },
    });
    await backend.init();
    return new SpecValidator(backend, performance.now() - started);
  }

  /** The documented operation with this id; throws for ids the description does not have. */
  operation(operationId: string): SpecOperation {
    const found = this.byId.get(operationId);
    if (found === undefined)
      throw new Error(`GitHub's OpenAPI description has no operation '${operationId}'`);
    return found;
  }

  /**
   * The documented operation a request path matches, by the description's own (one segment per
   * parameter) templates; undefined when GitHub documents no such operation.
   */
  match(method: string, path: string): string | undefined {
    // openapi-backend's matching, on precompiled patterns: an exact path first, then the most
    // literal template that matches, then the method.
    const wanted = method.toLowerCase();
    let normalized = path.trim().split("?")[0] ?? "";
    if (!normalized.startsWith("/")) normalized = `/${normalized}`;
    while (normalized.length > 1 && normalized.endsWith("/")) normalized = normalized.slice(0, -1);
    const routes = this.routesBySegments.get(segmentCount(normalized)) ?? [];
    const exact = routes.find((route) => route.path === normalized && route.method === wanted);
    if (exact !== undefined) return exact.operationId;
    return routes.filter((route) => route.pattern.test(normalized)).find((route) => route.method === wanted)
      ?.operationId;
  }

  /** Why a request is not one GitHub accepts for this operation; empty when it is. */
  checkRequest(operationId: string, request: RequestParts): string[] {
    const operation = this.backend.router.getOperation(operationId);
    if (operation === undefined) return [`'${operationId}' is not a documented operation`];
    const query: Record<string, string | string[]> = { ...request.query };
    for (const parameter of operation.parameters ?? []) {
      if ("$ref" in parameter || parameter.in !== "query") continue;
      const value = query[parameter.name];
      const schema = parameter.schema;
      if (
        typeof value === "string" &&
        schema !== undefined &&
        !("$ref" in schema) &&
        schema.type === "array"
      ) {
        query[parameter.name] = [value];
      }
    }
    const input: Record<string, unknown> = {
      path: { ...request.pathParams },
      query,
      header: request.headers,
      cookie: {},
    };
    if (request.body !== undefined) input.requestBody = request.body;
    const problems: string[] = [];
    for (const validate of this.backend.validator.getRequestValidatorsForOperation(operationId)) {
      if (!validate(input) && validate.errors) problems.push(...formatErrors(validate.errors));
    }
    return problems;
  }

  /** Why a response is not one GitHub documents for this operation and status; empty when it is. */
  checkResponse(operationId: string, status: number, body: unknown): string[] {
    const spec = this.operation(operationId);
    const documented =
      spec.statuses.includes(String(status)) ||
      spec.statuses.includes(`${Math.floor(status / 100)}XX`) ||
      spec.statuses.includes("default");
    if (!documented && !UNIVERSAL_STATUSES.has(status)) {
      return [
        `status ${status} is not documented for ${operationId} (documented: ${spec.statuses.join(", ")})`,
      ];
    }
    const result = this.backend.validator.validateResponse(body, operationId, status);
    return result.errors ? formatErrors(result.errors).map((problem) => `response body ${problem}`) : [];
  }
}

let loading: Promise<SpecValidator> | undefined;

/** The process-wide validator: the description is 13 MB, so it is read once per test process. */
export function specValidator(): Promise<SpecValidator> {
  loading ??= SpecValidator.load();
  return loading;
}
