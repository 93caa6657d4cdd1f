/**
 * The whole chain with host impact, end to end on real Nix (each version under test) and the fake
 * GitHub: an upstream push → notify.ts → bump.ts → open-pr.ts → impact.ts ends with a pull request
 * whose body says which hosts change and how, which do not, and which no longer evaluate. Hosts are
 * derivations whose builder is /bin/false: evaluating them is all that may happen.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { SECTION_END, SECTION_START } from "../lib/impact/text.ts";
import { parseMarker } from "../lib/pr/text.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import { type Chain, type ChainFiles, chain } from "./support/chain.ts";
import { nixVariants } from "./support/nix.ts";

const TIMEOUT = 240_000;

/** The upstream at commit n: a tool at version 1.n; from commit 2 on an agent, and `compat` dropped. */
const upstream = (n: number) => ({
  "flake.nix": `{ outputs = _: { lib = { version = "1.${n}";${n < 2 ? ` compat = "0.9";` : ` agent = "0.${n}";`} }; }; }\n`,
});
const downstream = `{
  inputs.nixfleet.url = "github:acme/nixfleet?host=localhost";
  outputs = { nixfleet, ... }:
    let
      lib = nixfleet.lib;
      pkg = name: deps: derivation { inherit name deps; builder = "/bin/false"; system = "x86_64-linux"; };
      tool = pkg "fleet-tool-\${lib.version}" [ ];
      host = name: deps: { config.system.build.toplevel = pkg "nixos-system-\${name}-24.11" deps; };
      agent = if lib ? agent then [ (pkg "fleet-agent-\${lib.agent}" [ ]) ] else [ ];
    in {
      nixosConfigurations.web = host "web" ([ tool (pkg "nginx-1.27.2" [ ]) ] ++ agent);
      nixosConfigurations.db = host "db" [ (pkg "postgresql-16.4" [ ]) ];
      nixosConfigurations.legacy = host "legacy" [ (pkg "compat-shim-\${lib.compat}" [ ]) ];
      homeConfigurations."alice@laptop".activationPackage =
        pkg "home-manager-generation" [ tool (pkg "git-2.47.0" [ ]) ];
    };
}
`;
const files: ChainFiles = { upstream, downstream };

/** The impact section of a body, and how many there are. */
function sections(body: string | null | undefined): string[] {
  return [...(body ?? "").matchAll(/<!-- flake-bump:impact -->[\s\S]*?<!-- \/flake-bump:impact -->/g)].map(
    (m) => m[0],
  );
}

let fake: FakeGitHub;
beforeAll(async () => {
  fake = await fakeGitHub();
});

for (const variant of nixVariants()) {
  describe(`the chain with host impact, Nix ${variant.version}`, () => {
    let c: Chain;
    beforeAll(async () => {
      c = await chain(fake, variant);
    });
    afterAll(async () => {
      await c[Symbol.asyncDispose]();
    });
    beforeEach(async () => {
      await fake.reset();
      await c.seed(3, files);
    }, TIMEOUT);
    afterEach(() => fake.assertNoViolations());

    test(
      "notify → bump → open-pr → impact: the PR names changed, unchanged and broken hosts; reruns keep one section, a new rev replaces it",
      async () => {
        const pushed = c.revs[2] ?? "";
        expect((await c.notify(pushed)).exitCode).toBe(0);
        const first = await c.downstreamRun({ impact: true });
        expect([first.bump.exitCode, first.openPr.exitCode, first.impact?.exitCode]).toStrictEqual([0, 0, 0]);
        expect(first.impact?.stderr).toContain("nixfleet: written");
        const [pull] = c.openPulls();
        const [section, ...extra] = sections(pull?.body);
        expect(extra).toStrictEqual([]);
        expect(section).toContain("**Fails to evaluate with this bump (1)**");
        expect(section).toContain("- `legacy`:");
        expect(section).toMatch(/attribute 'compat' missing/);
        expect(section).toContain("**Changed (2)**");
        // Said once for both hosts, then what only `web` has.
        expect(section).toContain(
          "On both changed hosts: fleet-tool 1.0 → 1.2\n\nEach host's own changes:\n\n- `web`: + fleet-agent 0.2\n",
        );
        expect(section).toContain("Unchanged: `db`.");
        expect(section).toContain("After merging, deploy: `alice@laptop`, `web` (`db` unchanged).");
        // Hosts first, the marker last: the section sits before flake-bump's marker.
        expect(pull?.body?.indexOf(SECTION_END)).toBeLessThan(pull?.body?.indexOf("<!-- flake-bump {") ?? 0);
        // FLAKE_BUMP_SHOW_SECTION=1 prints the section as written: docs/host-impact.md's example is this one.
        if (process.env.FLAKE_BUMP_SHOW_SECTION) process.stderr.write(`${section}\n`);

        // The same dispatch again: open-pr changes nothing, impact finds its section up to date.
        const again = await c.downstreamRun({ impact: true });
        expect(again.openPr.stderr).toContain("nixfleet: unchanged");
        expect(again.impact?.stderr).toContain("nixfleet: unchanged");
        expect(c.openPulls()[0]?.body).toBe(pull?.body);

        // A newer push: open-pr moves the PR and drops the stale section, impact writes the new one.
        const newer = c.revs[3] ?? "";
        await c.notify(newer);
        const moved = await c.downstreamRun({ impact: true });
        expect(moved.openPr.stderr).toContain("nixfleet: updated");
        expect(moved.impact?.stderr).toContain("nixfleet: written");
        const body = c.openPulls()[0]?.body;
        expect(parseMarker(body)?.rev).toBe(newer);
        const [replaced, ...more] = sections(body);
        expect(more).toStrictEqual([]);
        expect(replaced).toContain(
          "On both changed hosts: fleet-tool 1.0 → 1.3\n\nEach host's own changes:\n\n- `web`: + fleet-agent 0.3\n",
        );
        expect(replaced).not.toContain("1.2");
        expect(body?.split(SECTION_START)).toHaveLength(2);
      },
      TIMEOUT,
    );
  });
}
