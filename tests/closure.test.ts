/**
 * The .drv reader against real derivation files: each case is a derivation this test has Nix (each
 * version under test) write, read back as text with `nix store cat` (which works for the chroot's
 * store too), parsed by flake-bump and compared with what the table says and with Nix's own reading
 * of the same file (`nix derivation show`).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { $ } from "zx";
import { EXPERIMENTAL, parseNixVersion } from "../lib/flake/nix.ts";
import {
  type ATerm,
  type DrvNode,
  parseATerm,
  parseDerivationShow,
  parseDrvFile,
} from "../lib/impact/closure.ts";
import { nixTestEnv, nixVariants } from "./support/nix.ts";
import { cleanEnv } from "./support/run.ts";

const NIX_TIMEOUT = 120_000;

/** Strings Nix must escape in a .drv: quotes, backslashes, newlines, tabs, carriage returns. */
// `$` and `{` apart: a Nix string would interpolate them together, and this must stay literal.
const TRICKY = `a "quoted" \\back\\slash\\\\ line\nbreak\ttab\rreturn $${"{"}not interpolated} ü €`;

interface Case {
  title: string;
  /** Nix attributes of `derivation { … }` (system and builder added); `dep` is another derivation. */
  attrs: string;
  node: Omit<DrvNode, "inputDrvs"> & { inputs: number };
  /** An env variable whose value must come back exactly. */
  env?: [string, string];
}

const cases: Case[] = [
  {
    title: "plain",
    attrs: `name = "hello-1.0";`,
    node: { name: "hello-1.0", fixedOutput: false, inputs: 0 },
  },
  {
    title: "escapes in strings",
    attrs: `name = "tricky-2.0"; tricky = ${JSON.stringify(TRICKY).replaceAll("${", "\\${")};`,
    node: { name: "tricky-2.0", fixedOutput: false, inputs: 0 },
    env: ["tricky", TRICKY],
  },
  {
    title: "a backslash at the very end of a value, then a plain value",
    attrs: `name = "tail-1"; a = "ends with \\\\"; b = "plain";`,
    node: { name: "tail-1", fixedOutput: false, inputs: 0 },
    env: ["a", "ends with \\"],
  },
  {
    title: "fixed output (a fetcher's result)",
    attrs: `name = "src.tar.gz"; outputHashMode = "flat"; outputHashAlgo = "sha256";
      outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";`,
    node: { name: "src.tar.gz", fixedOutput: true, inputs: 0 },
  },
  {
    title: "several outputs and input derivations",
    attrs: `name = "lib-3.1"; outputs = [ "out" "dev" ]; deps = [ dep dep.src ];`,
    node: { name: "lib-3.1", fixedOutput: false, inputs: 2 },
  },
  {
    title: "structured attributes (no env name: the name comes from the path)",
    attrs: `name = "structured-1.0"; __structuredAttrs = true; list = [ "x\\ny" ];`,
    node: { name: "structured-1.0", fixedOutput: false, inputs: 0 },
  },
];

function envOf(term: ATerm): Map<string, string> {
  const env = new Map<string, string>();
  if (typeof term !== "object" || !("ctor" in term)) return env;
  const list = term.args[6];
  if (typeof list !== "object" || !("list" in list)) return env;
  for (const entry of list.list) {
    if (typeof entry === "object" && "tuple" in entry) {
      const [key, value] = entry.tuple;
      if (typeof key === "string" && typeof value === "string") env.set(key, value);
    }
  }
  return env;
}

for (const variant of nixVariants()) {
  describe(`.drv files of Nix ${variant.version}`, () => {
    let env: Record<string, string | undefined>;
    let nixEnv: AsyncDisposable;
    const drvPaths: string[] = [];
    const version = parseNixVersion(`nix ${variant.version}`) ?? expect.unreachable();

    beforeAll(async () => {
      const nix = nixTestEnv();
      nixEnv = nix;
      env = cleanEnv({ ...nix, ...variant.env });
      const salt = crypto.randomUUID();
      const mk = (attrs: string) =>
        `derivation ({ system = "x86_64-linux"; builder = "/bin/false"; salt = "${salt}"; } // { ${attrs} })`;
      const expr = `let
        src = ${mk(`name = "dep-src.tar.gz"; outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";`)};
        dep = ${mk(`name = "dep-1";`)} // { inherit src; };
      in map (d: d.drvPath) [ ${cases.map((c) => `(${mk(c.attrs)})`).join(" ")} ]`;
      const out = await $({
        env,
        quiet: true,
        cwd: "/",
      })`nix ${EXPERIMENTAL} eval --json --impure --expr ${expr}`;
      drvPaths.push(...(JSON.parse(out.stdout) as string[]));
    }, NIX_TIMEOUT);

    afterAll(async () => {
      await nixEnv?.[Symbol.asyncDispose]();
    });

    test.each(cases.map((c, i) => ({ ...c, i })))(
      "$title",
      async ({ i, node, env: wanted }) => {
        const path = drvPaths[i] ?? expect.unreachable();
        const text = (await $({ env, quiet: true })`nix ${EXPERIMENTAL} store cat ${path}`).stdout;
        const parsed = parseDrvFile(path, text);
        expect({
          name: parsed.name,
          fixedOutput: parsed.fixedOutput,
          inputs: parsed.inputDrvs.length,
        }).toStrictEqual(node);
        if (wanted !== undefined) expect(envOf(parseATerm(text)).get(wanted[0])).toBe(wanted[1]);
        // The same file as Nix reads it.
        const show = version.minor >= 15 ? ["derivation", "show"] : ["show-derivation"];
        const shown = await $({ env, quiet: true })`nix ${EXPERIMENTAL} ${show} ${path}`;
        const theirs = parseDerivationShow(JSON.parse(shown.stdout)).get(path);
        expect({ ...parsed, inputDrvs: [...parsed.inputDrvs].sort() }).toStrictEqual({
          name: parsed.name,
          fixedOutput: theirs?.fixedOutput ?? expect.unreachable(),
          inputDrvs: [...(theirs?.inputDrvs ?? [])].sort(),
        });
        expect(theirs?.name).toBe(node.name);
      },
      NIX_TIMEOUT,
    );
  });
}
