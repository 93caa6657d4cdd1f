/**
 * Host impact's parallel processes, without Nix: the slots that bound them, the memory guard that
 * stops the newest when memory runs short, and the progress lines a person reads in the log.
 */
import { expect, test } from "bun:test";
import { MemoryGuard, Slots, treeRssBytes } from "../../lib/impact/jobs.ts";
import { ImpactProgress } from "../../lib/impact/progress.ts";

test("slots: a third acquire waits for a release; shrinking never goes below one", async () => {
  const slots = new Slots(2);
  const first = await slots.acquire();
  await slots.acquire();
  let third = false;
  const waiting = slots.acquire().then((release) => {
    third = true;
    return release;
  });
  await Bun.sleep(5);
  expect(third).toBe(false);
  first();
  first(); // a second release of the same slot frees nothing more
  (await waiting)();
  expect(third).toBe(true);
  slots.shrink();
  slots.shrink();
  expect(slots.capacity).toBe(1);
});

test("treeRssBytes: this process holds memory; an unknown pid holds none", () => {
  const sizes = treeRssBytes([process.pid, 2 ** 30]);
  expect(sizes.get(process.pid) ?? 0).toBeGreaterThan(1_000_000);
  expect(sizes.has(2 ** 30)).toBe(false);
});

test("the guard stops the newest of several processes when memory runs short, never the last one", () => {
  const slots = new Slots(3);
  let available = 10 * 2 ** 30;
  const guard = new MemoryGuard(slots, {
    reserveBytes: 2 ** 30,
    available: () => available,
    intervalMs: 60_000,
  });
  const stopped: string[] = [];
  const unwatchA = guard.watch(process.pid, () => stopped.push("a"));
  const unwatchB = guard.watch(process.pid, () => stopped.push("b"));
  expect(stopped).toStrictEqual([]);
  available = 2 ** 20;
  guard.sample();
  expect(stopped).toStrictEqual(["b"]);
  // Until the stopped process has gone, nothing else is stopped.
  guard.sample();
  expect(stopped).toStrictEqual(["b"]);
  expect(slots.capacity).toBe(2);
  expect(guard.stops).toBe(1);
  expect(guard.peakBytes).toBeGreaterThan(1_000_000);
  // The stopped one has gone: the one left runs on, however short memory is.
  unwatchB();
  guard.sample();
  expect(stopped).toStrictEqual(["b"]);
  unwatchA();
  guard.dispose();
});

interface ProgressCase {
  title: string;
  sides: string[];
  events: (
    | { hosts: [number, number, number, string[]] }
    | { done: [number, string, string, number?] }
    | { failed: [number, string, string] }
  )[];
  lines: string[];
}

const progressCases: ProgressCase[] = [
  {
    title: "one bump: each host's status once both locks are evaluated",
    sides: ["the base lock", "nixpkgs"],
    events: [
      { hosts: [0, 1, 0, ["web", "db"]] },
      { hosts: [0, 1, 1, ["web", "db"]] },
      { done: [0, "web", "/a-web.drv", 4.04] },
      { done: [1, "web", "/b-web.drv", 8.1] },
      { done: [1, "db", "/a-db.drv"] },
      { done: [0, "db", "/a-db.drv", 0.25] },
    ],
    lines: [
      "the base lock: evaluating 2 hosts (nixosConfigurations.web, nixosConfigurations.db)",
      "the lock for nixpkgs: evaluating 2 hosts (nixosConfigurations.web, nixosConfigurations.db)",
      "[1/4] nixosConfigurations.web evaluated with the base lock (4.0 s)",
      "[2/4] nixosConfigurations.web changed (8.1 s)",
      "[3/4] nixosConfigurations.db evaluated with the lock for nixpkgs",
      "[4/4] nixosConfigurations.db unchanged (0.3 s)",
    ],
  },
  {
    title: "several processes and inputs: which process lists what, a retry's listing not counted again",
    sides: ["the base lock", "nixpkgs", "home-manager"],
    events: [
      { hosts: [1, 2, 0, ["a", "b", "c", "d", "e", "f", "g"]] },
      { hosts: [1, 2, 0, ["b"]] },
      { failed: [0, "a", "attribute 'x' missing\nat /f.nix:1:2"] },
      { done: [1, "b", "/1-b.drv", 1] },
      { done: [2, "b", "/0-b.drv", 1] },
      { done: [0, "b", "/0-b.drv", 2] },
    ],
    lines: [
      "nix eval 2/2, the base lock: evaluating 7 hosts (nixosConfigurations.a, nixosConfigurations.b, nixosConfigurations.c, nixosConfigurations.d, nixosConfigurations.e, nixosConfigurations.f, and 1 more)",
      "[1/7] nixosConfigurations.a failed with the base lock: attribute 'x' missing",
      "[2/7] nixosConfigurations.b evaluated with the lock for nixpkgs (1.0 s)",
      "[3/7] nixosConfigurations.b evaluated with the lock for home-manager (1.0 s)",
      "[4/7] nixosConfigurations.b changed by nixpkgs, unchanged by home-manager (2.0 s)",
    ],
  },
];

test.each(progressCases)("progress: $title", ({ sides, events, lines }) => {
  const written: string[] = [];
  const progress = new ImpactProgress(
    sides,
    (line) => written.push(line),
    ([output, name]) => `${output}.${name}`,
  );
  const path = (name: string) => ["nixosConfigurations", name] as const;
  const attr = (name: string) => `nixosConfigurations.${name}`;
  for (const event of events) {
    if ("hosts" in event) {
      const [index, count, side, names] = event.hosts;
      progress.hosts({ index, count }, side, names.map(path));
    } else if ("done" in event) {
      const [side, name, drvPath, seconds] = event.done;
      progress.done({ side, attr: attr(name), drvPath, ...(seconds === undefined ? {} : { seconds }) });
    } else {
      const [side, name, error] = event.failed;
      progress.failed({ side, attr: attr(name), error });
    }
  }
  expect(written).toStrictEqual(lines);
});
