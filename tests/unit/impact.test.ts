import { describe, expect, test } from "bun:test";
import {
  ClosureDiffer,
  type DrvGraph,
  diffPackages,
  isNoise,
  type PackageDiff,
  type PackageSet,
  parseDerivationShow,
  parseDrvFile,
  parseDrvName,
} from "../../lib/impact/closure.ts";
import {
  attrName,
  classify,
  type HostDone,
  type HostImpact,
  type InputImpact,
  nixErrorExcerpt,
  type OnlyFilter,
  parseOnly,
  parseTraces,
  type SideResult,
  TraceReader,
  type TraceState,
} from "../../lib/impact/evaluate.ts";
import {
  deployLine,
  describeImpact,
  renderSection,
  SECTION_END,
  SECTION_START,
  summaryMarkdown,
} from "../../lib/impact/text.ts";
import { renderMarker, replaceSection } from "../../lib/pr/text.ts";

describe("parseDrvName", () => {
  const cases: [string, { name: string; version: string }][] = [
    ["openssl-3.3.3", { name: "openssl", version: "3.3.3" }],
    [
      "nixos-system-web-24.11.20250101.abcdef",
      { name: "nixos-system-web", version: "24.11.20250101.abcdef" },
    ],
    ["python3.12-requests-2.32.3", { name: "python3.12-requests", version: "2.32.3" }],
    ["home-manager-generation", { name: "home-manager-generation", version: "" }],
    ["foo-", { name: "foo-", version: "" }],
    ["gcc-wrapper-13.2.0", { name: "gcc-wrapper", version: "13.2.0" }],
    ["unit-script-x-pre-start", { name: "unit-script-x-pre-start", version: "" }],
    ["linux-6.6.1-modules", { name: "linux", version: "6.6.1-modules" }],
  ];
  test.each(cases)("%s", (full, expected) => expect(parseDrvName(full)).toStrictEqual(expected));
});

describe("isNoise", () => {
  const cases: [string, boolean, boolean][] = [
    ["openssl-3.3.3", false, false],
    ["openssl-3.3.3.tar.gz", false, true],
    ["source", false, true],
    ["openssl-src", false, true],
    ["CVE-2024-1234.patch", false, true],
    ["fix-build.diff", false, true],
    ["bootstrap-tools", false, true],
    ["stdenv-linux-stage1", false, true],
    ["anything-at-all", true, true],
    ["sourcehut-0.1", false, false],
  ];
  test.each(cases)("%s (fixed-output %p) → %p", (name, fixedOutput, noise) =>
    expect(isNoise({ name, fixedOutput })).toBe(noise),
  );
});

const set = (entries: Record<string, string[]>): PackageSet =>
  new Map(Object.entries(entries).map(([name, versions]) => [name, new Set(versions)]));

describe("diffPackages", () => {
  const cases: {
    title: string;
    from: Record<string, string[]>;
    to: Record<string, string[]>;
    diff: PackageDiff;
  }[] = [
    {
      title: "no change",
      from: { a: ["1"] },
      to: { a: ["1"] },
      diff: { changed: [], added: [], removed: [] },
    },
    {
      title: "a version moved",
      from: { openssl: ["3.3.2"], zlib: ["1.3"] },
      to: { openssl: ["3.3.3"], zlib: ["1.3"] },
      diff: { changed: [{ name: "openssl", from: "3.3.2", to: "3.3.3" }], added: [], removed: [] },
    },
    {
      title: "added and removed packages",
      from: { old: ["1"] },
      to: { fresh: ["2"], bare: [""] },
      diff: {
        changed: [],
        added: [
          { name: "bare", version: "" },
          { name: "fresh", version: "2" },
        ],
        removed: [{ name: "old", version: "1" }],
      },
    },
    {
      title: "two versions side by side, one moves (paired in numeric order)",
      from: { python3: ["3.9.1", "3.12.1"] },
      to: { python3: ["3.10.0", "3.12.1"] },
      diff: { changed: [{ name: "python3", from: "3.9.1", to: "3.10.0" }], added: [], removed: [] },
    },
    {
      title: "a second version appears",
      from: { gcc: ["13.2.0"] },
      to: { gcc: ["13.2.0", "14.1.0"] },
      diff: { changed: [], added: [{ name: "gcc", version: "14.1.0" }], removed: [] },
    },
  ];
  test.each(cases)("$title", ({ from, to, diff }) =>
    expect(diffPackages(set(from), set(to))).toStrictEqual(diff),
  );
});

describe("closures", () => {
  const show = {
    "/nix/store/aaaa-host.drv": {
      outputs: { out: { path: "/x" } },
      inputDrvs: { "/nix/store/bbbb-tool-2.drv": ["out"] },
    },
    "/nix/store/bbbb-tool-2.drv": {
      outputs: { out: {} },
      inputDrvs: {
        "/nix/store/cccc-tool-2.tar.gz.drv": { outputs: ["out"], dynamicOutputs: {} },
        "/nix/store/dddd-lib-1.drv": ["out"],
      },
    },
    "/nix/store/cccc-tool-2.tar.gz.drv": {
      outputs: { out: { hash: "00", hashAlgo: "sha256" } },
      inputDrvs: {},
    },
    "/nix/store/dddd-lib-1.drv": { outputs: { out: {} }, inputDrvs: {} },
    "/nix/store/eeee-host.drv": { outputs: { out: {} }, inputDrvs: { "/nix/store/dddd-lib-1.drv": ["out"] } },
  };
  test("derivation show of both Nix shapes becomes one graph; fixed outputs are noise", () => {
    const graph: DrvGraph = parseDerivationShow(show);
    expect(graph.get("/nix/store/bbbb-tool-2.drv")).toStrictEqual({
      name: "tool-2",
      fixedOutput: false,
      inputDrvs: ["/nix/store/cccc-tool-2.tar.gz.drv", "/nix/store/dddd-lib-1.drv"],
    });
    const differ = new ClosureDiffer(graph);
    expect(differ.packages("/nix/store/aaaa-host.drv")).toStrictEqual(
      set({ host: [""], tool: ["2"], lib: ["1"] }),
    );
    const diff = differ.diff("/nix/store/eeee-host.drv", "/nix/store/aaaa-host.drv");
    expect(diff).toStrictEqual({ changed: [], added: [{ name: "tool", version: "2" }], removed: [] });
    expect(differ.diff("/nix/store/eeee-host.drv", "/nix/store/aaaa-host.drv")).toBe(diff);
  });
  // What Nix 2.34.8 printed for `nix derivation show --recursive` of a derivation with one input and
  // of a fixed-output one (trimmed of args and env): format 4, base names only.
  const v4 = {
    derivations: {
      "6lwj1zj425p5b8khjv79hamfmxc0r5kx-top-2.0.drv": {
        inputs: {
          drvs: { "qh683sx7lngxgsrjjwg641jy2wi4nhlm-dep-1.0.drv": { dynamicOutputs: {}, outputs: ["out"] } },
          srcs: [],
        },
        name: "top-2.0",
        outputs: { out: { path: "2yssmcphmjpzq1ji8yn74p2i405xv3h5-top-2.0" } },
        version: 4,
      },
      "qh683sx7lngxgsrjjwg641jy2wi4nhlm-dep-1.0.drv": {
        inputs: { drvs: {}, srcs: [] },
        name: "dep-1.0",
        outputs: { out: { path: "3sm5b2wvipsafgdvlac1xcswjnwgp0nw-dep-1.0" } },
        version: 4,
      },
      "b40wjdp69ghxs535zq1r8gdp4cald4qp-src.tar.gz.drv": {
        inputs: { drvs: {}, srcs: [] },
        name: "src.tar.gz",
        outputs: { out: { hash: "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", method: "flat" } },
        version: 4,
      },
    },
    version: 4,
  };
  const top = "/nix/store/6lwj1zj425p5b8khjv79hamfmxc0r5kx-top-2.0.drv";
  const dep = "/nix/store/qh683sx7lngxgsrjjwg641jy2wi4nhlm-dep-1.0.drv";
  const src = "/nix/store/b40wjdp69ghxs535zq1r8gdp4cald4qp-src.tar.gz.drv";
  const expected: DrvGraph = new Map([
    [top, { name: "top-2.0", fixedOutput: false, inputDrvs: [dep] }],
    [dep, { name: "dep-1.0", fixedOutput: false, inputDrvs: [] }],
    [src, { name: "src.tar.gz", fixedOutput: true, inputDrvs: [] }],
  ]);
  const v3 = Object.fromEntries(
    Object.entries(v4.derivations).map(([path, { inputs, outputs }]) => [
      path,
      { inputDrvs: inputs.drvs, outputs },
    ]),
  );
  const shapes: Array<[string, unknown]> = [
    ["format 4 (Nix ≥ 2.33): wrapped, inputs.drvs, base names", v4],
    ["format 3 (Nix 2.32): the map, inputDrvs, base names", v3],
  ];
  test.each(shapes)("%s: full store paths, as evaluation names them", (_what, json) => {
    expect(parseDerivationShow(json)).toStrictEqual(expected);
  });
  test("base names take the store directory given", () => {
    expect([...parseDerivationShow(v4, "/other/store").keys()]).toStrictEqual(
      [top, dep, src].map((path) => path.replace("/nix/store", "/other/store")),
    );
  });
  test("an unknown shape is a runtime error naming the fix", () =>
    expect(() => parseDerivationShow({ x: { outputs: 1 } })).toThrow(/report this with your Nix version/));
});

describe("parseDrvFile on text that is not a derivation", () => {
  const cases: { title: string; text: string; error: RegExp }[] = [
    { title: "empty", text: "", error: /expected a string, list, tuple or constructor at offset 0/ },
    { title: "unterminated string", text: 'Derive([("out","/x', error: /unterminated string/ },
    { title: "another constructor", text: "Other([])", error: /\(Other\)/ },
    { title: "outputs not a list", text: 'Derive("x",[],[],"s","b",[],[])', error: /outputs is not a list/ },
    { title: "trailing text", text: 'Derive([],[],[],"s","b",[],[])x', error: /unexpected text/ },
  ];
  test.each(cases)("$title", ({ text, error }) =>
    expect(() => parseDrvFile("/nix/store/x-y.drv", text)).toThrow(error),
  );
  test("the path names the file and the fix", () =>
    expect(() => parseDrvFile("/nix/store/x-y.drv", "")).toThrow(
      /^\/nix\/store\/x-y\.drv is not a derivation flake-bump can read .*; report this with your Nix version$/,
    ));
});

describe("--only and attribute names", () => {
  const cases: [string, OnlyFilter][] = [
    ["nixosConfigurations.web", ["nixosConfigurations", "web"]],
    ['homeConfigurations."me@laptop"', ["homeConfigurations", "me@laptop"]],
    ["darwinConfigurations", ["darwinConfigurations", null]],
  ];
  test.each(cases)("%s", (text, filter) => expect(parseOnly(text)).toStrictEqual(filter));
  test("another output is a usage error", () =>
    expect(() => parseOnly("packages.x")).toThrow(/must start with/));
  test("names Nix would quote are quoted", () => {
    expect(attrName(["homeConfigurations", "me@laptop"])).toBe('homeConfigurations."me@laptop"');
    expect(attrName(["nixosConfigurations", "web-1"])).toBe("nixosConfigurations.web-1");
  });
});

describe("traces and errors", () => {
  const traceCases: { title: string; lines: string[]; state: TraceState }[] = [
    {
      title: "a host aborted the evaluation of side 1",
      lines: [
        "trace: flake-bump-impact side 0",
        'trace: flake-bump-impact hosts 0 [[0,"nixosConfigurations","a"]]',
        'trace: flake-bump-impact begin [0,"nixosConfigurations","a"]',
        'trace: flake-bump-impact done [0,"nixosConfigurations","a"] /nix/store/x-a.drv',
        "trace: flake-bump-impact side 1",
        'trace: flake-bump-impact hosts 1 [[1,"nixosConfigurations","a"],[1,"nixosConfigurations","b"]]',
        'trace: flake-bump-impact begin [1,"nixosConfigurations","a"]',
        'trace: flake-bump-impact done [1,"nixosConfigurations","a"] /nix/store/y-a.drv',
        'trace: flake-bump-impact begin [1,"nixosConfigurations","b"]',
        "error: attribute 'feature' missing",
      ],
      state: {
        hosts: new Map([
          [0, [["nixosConfigurations", "a"]]],
          [
            1,
            [
              ["nixosConfigurations", "a"],
              ["nixosConfigurations", "b"],
            ],
          ],
        ]),
        done: new Map([
          [
            "0 nixosConfigurations.a",
            { side: 0, path: ["nixosConfigurations", "a"], drvPath: "/nix/store/x-a.drv" },
          ],
          [
            "1 nixosConfigurations.a",
            { side: 1, path: ["nixosConfigurations", "a"], drvPath: "/nix/store/y-a.drv" },
          ],
        ]),
        pending: { side: 1, path: ["nixosConfigurations", "b"] },
      },
    },
    {
      title: "a side's flake failed before listing its hosts",
      lines: [
        "trace: flake-bump-impact side 0",
        "trace: flake-bump-impact hosts 0 []",
        "trace: flake-bump-impact side 1",
        "error: syntax error, unexpected end of file",
      ],
      state: { hosts: new Map([[0, []]]), done: new Map(), pending: { side: 1 } },
    },
    {
      title: "colours and unrelated lines are ignored",
      lines: [
        "\u001b[35;1mtrace: flake-bump-impact side 0\u001b[0m",
        "warning: Git tree is dirty",
        "trace: something else",
      ],
      state: { hosts: new Map(), done: new Map(), pending: { side: 0 } },
    },
  ];
  test.each(traceCases)("traces: $title", ({ lines, state }) =>
    expect(parseTraces(lines.join("\n"))).toStrictEqual(state),
  );
  test("traces split across chunks are read as they arrive", () => {
    const seen: HostDone[] = [];
    const reader = new TraceReader((done) => seen.push(done));
    const text = 'trace: flake-bump-impact done [0,"homeConfigurations","me@laptop"] /nix/store/z-home.drv\n';
    reader.write(text.slice(0, 30));
    expect(seen).toStrictEqual([]);
    reader.write(text.slice(30));
    expect(seen).toStrictEqual([
      { side: 0, path: ["homeConfigurations", "me@laptop"], drvPath: "/nix/store/z-home.drv" },
    ]);
  });
  const cases: [string, string][] = [
    [
      "error: attribute 'x' missing\n\n       at /f.nix:1:2:\n(use '--show-trace' to show detailed location information)",
      "attribute 'x' missing\nat /f.nix:1:2:",
    ],
    ["error:\n       … while evaluating\n\n       error: boom", "boom"],
    ['trace: flake-bump-impact begin ["a","b"]\nsomething odd', "something odd"],
  ];
  test.each(cases)("excerpt %#", (stderr, excerpt) => expect(nixErrorExcerpt(stderr)).toBe(excerpt));
});

describe("classify", () => {
  const side = (hosts: Record<string, string>, error?: string): SideResult => ({
    hosts: new Map(
      Object.entries(hosts).map(([attr, value]) => [
        attr,
        value.startsWith("/") ? { drvPath: value } : { error: value },
      ]),
    ),
    timedOut: false,
    evaluations: 1,
    ...(error ? { error } : {}),
  });
  test("every status", () => {
    const base = side({ same: "/a", moved: "/b", gone: "/c", broken: "/d", never: "no", fixed: "no" });
    const next = side({ same: "/a", moved: "/b2", fresh: "/e", broken: "boom", never: "no", fixed: "/f" });
    expect(classify(base, next)).toStrictEqual([
      { attr: "broken", status: "failed", drvPath: { from: "/d" }, error: "boom" },
      { attr: "fixed", status: "fixed", drvPath: { to: "/f" }, error: "no" },
      { attr: "fresh", status: "added", drvPath: { to: "/e" } },
      { attr: "gone", status: "removed", drvPath: { from: "/c" } },
      { attr: "moved", status: "changed", drvPath: { from: "/b", to: "/b2" } },
      { attr: "never", status: "unevaluable" },
      { attr: "same", status: "unchanged", drvPath: { from: "/a", to: "/a" } },
    ] satisfies HostImpact[]);
  });
  test("a new lock on which the flake itself fails fails every host", () => {
    const hosts = classify(side({ a: "/a" }), side({}, "flake.nix: syntax error"));
    expect(hosts).toStrictEqual([
      { attr: "a", status: "failed", drvPath: { from: "/a" }, error: "flake.nix: syntax error" },
    ]);
  });
});

function impactOf(hosts: HostImpact[]): InputImpact {
  return { name: "nixpkgs", rev: "a".repeat(40), hosts };
}

describe("describeImpact's heading names what was compared", () => {
  const cases: { name: string; input: InputImpact; heading: string }[] = [
    { name: "one input and its rev", input: impactOf([]), heading: "Host impact of nixpkgs → aaaaaaa:" },
    {
      name: "a local lock that moves several inputs: no one rev, no dangling arrow",
      input: { name: "agenix,disko", rev: "", hosts: [] },
      heading: "Host impact of agenix,disko:",
    },
    {
      name: "a local lock that moves only transitive inputs",
      input: { name: "flake.lock", rev: "", hosts: [] },
      heading: "Host impact of flake.lock:",
    },
  ];
  test.each(cases)("$name", ({ input, heading }) => {
    expect(describeImpact([input])[0]).toBe(heading);
  });
});

describe("the PR section", () => {
  const hosts: HostImpact[] = [
    { attr: "nixosConfigurations.db", status: "unchanged" },
    {
      attr: "nixosConfigurations.web",
      status: "changed",
      packages: { changed: [{ name: "openssl", from: "3.3.2", to: "3.3.3" }], added: [], removed: [] },
    },
    { attr: 'homeConfigurations."me@laptop"', status: "changed" },
    { attr: "darwinConfigurations.mac", status: "failed", error: "error: ```x```\nat y" },
  ];
  const cases: { title: string; sentence?: string; line: string }[] = [
    { title: "default", line: "After merging, deploy: `me@laptop`, `web` (`db` unchanged)." },
    {
      title: "own sentence",
      sentence: "Roll out {hosts} with your tool.",
      line: "Roll out `me@laptop`, `web` (`db` unchanged) with your tool.",
    },
    {
      title: "sentence without placeholder",
      sentence: "Switch these:",
      line: "Switch these: `me@laptop`, `web` (`db` unchanged).",
    },
  ];
  test.each(cases)("deploy line: $title", ({ sentence, line }) =>
    expect(deployLine(hosts, sentence)).toBe(line),
  );

  test("a host the bump fixes: its own list with the base lock's error, and deployed", () => {
    const withFixed: HostImpact[] = [
      ...hosts,
      {
        attr: "nixosConfigurations.gw",
        status: "fixed",
        drvPath: { to: "/nix/store/g-gw.drv" },
        error: "attribute 'feature' missing\nat /f.nix:1:2:",
      },
    ];
    const section = renderSection(impactOf(withFixed));
    expect(section).toContain(
      "**Evaluates again with this bump (it failed on the base lock) (1)**\n\n- `gw`, which failed with:\n  ```\n  attribute 'feature' missing\n  ```",
    );
    expect(section).toContain("After merging, deploy: `gw`, `me@laptop`, `web` (`db` unchanged).");
    expect(summaryMarkdown([impactOf(withFixed)])).toContain(
      "| `nixosConfigurations.gw` | fixed | failed on the base lock: attribute 'feature' missing<br>at /f.nix:1:2: |",
    );
    expect(describeImpact([impactOf(withFixed)])).toContain(
      "  nixosConfigurations.gw: fixed: evaluates again (it failed on the base lock: attribute 'feature' missing)",
    );
  });

  test("hosts first, the failing host's error in a block it cannot close", () => {
    const section = renderSection(impactOf(hosts));
    expect(section.startsWith(SECTION_START)).toBeTrue();
    expect(section.endsWith(SECTION_END)).toBeTrue();
    expect(section.indexOf("`mac`")).toBeLessThan(section.indexOf("openssl 3.3.2 → 3.3.3"));
    expect(section).toContain("  error: '''x'''\n  at y\n  ```");
  });

  const body = `Updates x.\n\n${renderMarker({ input: "nixpkgs", rev: "a".repeat(40) })}`;
  const s1 = `${SECTION_START}\none\n${SECTION_END}`;
  const s2 = `${SECTION_START}\ntwo\n${SECTION_END}`;
  const replaceCases: { title: string; body: string | null; section: string; expected: string }[] = [
    {
      title: "inserted before the marker",
      body,
      section: s1,
      expected: `Updates x.\n\n${s1}\n\n${renderMarker({ input: "nixpkgs", rev: "a".repeat(40) })}`,
    },
    { title: "no marker: appended", body: "Text", section: s1, expected: `Text\n\n${s1}\n` },
    { title: "empty body", body: null, section: s1, expected: `${s1}\n` },
    { title: "replaced in place", body: `A\n\n${s1}\n\nB`, section: s2, expected: `A\n\n${s2}\n\nB` },
    {
      title: "duplicates collapse to one",
      body: `A\n\n${s1}\n\n${s1}\n\nB`,
      section: s2,
      expected: `A\n\n${s2}\n\nB`,
    },
  ];
  test.each(replaceCases)("replaceSection: $title", ({ body, section, expected }) =>
    expect(replaceSection(body, section)).toBe(expected),
  );
  test("replacing twice is the same as once", () => {
    const once = replaceSection(body, s1);
    expect(replaceSection(once, s1)).toBe(once);
  });

  test("500 changed packages on 50 hosts stay far under GitHub's 65,536-character body limit", () => {
    const changed = Array.from({ length: 500 }, (_, i) => ({
      name: `python3.12-package-number-${i}`,
      from: `1.${i}.0`,
      to: `1.${i}.1`,
    }));
    const many: HostImpact[] = Array.from({ length: 50 }, (_, i) => ({
      attr: `nixosConfigurations.host-with-a-long-name-${i}`,
      status: "changed",
      packages: { changed, added: [], removed: [] },
    }));
    const section = renderSection(impactOf(many));
    const full = replaceSection(
      `${"x".repeat(20_000)}\n\n${renderMarker({ input: "n", rev: "r" })}`,
      section,
    );
    expect(full.length).toBeLessThan(65_536);
    expect(section.length).toBeLessThanOrEqual(16_000);
    expect(section).toContain("`host-with-a-long-name-0`");
    expect(section).toMatch(/… and \d+ more/);
    // A single host with all 500 keeps every host and says how many packages are left out.
    const one = renderSection(impactOf(many.slice(0, 1)));
    expect(one).toContain("… and 490 more");
  });
});
