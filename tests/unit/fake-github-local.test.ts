/**
 * The fast tier's own fake GitHub: REST only on an ephemeral port, so several run side by side with
 * no root and no port 443, each with its own repositories on disk.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { createOctokit } from "../../lib/github/client.ts";
import { type FakeGitHub, localFakeGitHub } from "../fake-github/index.ts";

let one: FakeGitHub;
let two: FakeGitHub;

beforeAll(async () => {
  [one, two] = await Promise.all([localFakeGitHub(), localFakeGitHub()]);
});
afterAll(async () => {
  await Promise.all([one?.stop(), two?.stop()]);
});

test("two local fakes listen on different ephemeral ports and keep separate repositories", async () => {
  expect(one.apiUrl).not.toBe(two.apiUrl);
  expect(new URL(one.apiUrl).port).not.toBe("443");
  const files = { "flake.nix": "{ outputs = _: { }; }\n" };
  await one.createRepo("acme", "nixfleet", { files });
  expect(() => two.repo("acme", "nixfleet")).toThrow();
  await two.createRepo("acme", "nixfleet", { files });
  const pushed = await one.push("acme", "nixfleet", { "lib.nix": "1\n" }, "feat: lib");
  expect(await one.branchSha("acme", "nixfleet", "main")).toBe(pushed);
  expect(await two.branchSha("acme", "nixfleet", "main")).not.toBe(pushed);
  const [dirOne, dirTwo] = [one.repo("acme", "nixfleet").gitDir, two.repo("acme", "nixfleet").gitDir];
  expect(dirOne).not.toBe(dirTwo);
  expect(existsSync(dirOne) && existsSync(dirTwo)).toBe(true);
  const octokit = createOctokit({ baseUrl: one.apiUrl, token: one.token });
  const { data } = await octokit.rest.repos.get({ owner: "acme", repo: "nixfleet" });
  expect(data.default_branch).toBe("main");
  one.assertNoViolations();
});

test("a local fake has no HTTPS listener and says so when asked for one", () => {
  expect(() => one.certFile).toThrow(/started without HTTPS/);
  expect(() => one.httpsPort).toThrow(/started without HTTPS/);
});
