import { describe, expect, test } from "bun:test";
import { newestRelease, releaseStanding, releaseTag, seriesName } from "../../lib/flake/release.ts";

describe("seriesName: the tag's text with its numbers free, as many as it has", () => {
  const cases: [tag: string, series: string | undefined][] = [
    ["rust-engine-v0.1.17", "rust-engine-v<n>.<n>.<n>"],
    ["v1.2", "v<n>.<n>"],
    ["v1.2.1", "v<n>.<n>.<n>"],
    ["25.05", "<n>.<n>"],
    ["release-2026-03", "release-<n>-<n>"],
    ["v0.1.40-rc1", "v<n>.<n>.<n>-rc<n>"],
    ["v2.0.0-beta.2", "v<n>.<n>.<n>-beta.<n>"],
    ["nightly", undefined],
  ];
  test.each(cases)("%s → %s", (tag, series) => {
    const parsed = releaseTag(tag);
    expect(parsed === undefined ? undefined : seriesName(parsed)).toStrictEqual(series);
  });
});

describe("newestRelease: forward only, within the series", () => {
  const cases: [current: string, tags: string[], newest: string | undefined][] = [
    [
      "rust-engine-v0.1.17",
      ["rust-engine-v0.1.15", "rust-engine-v0.1.16", "rust-engine-v0.1.18"],
      "rust-engine-v0.1.18",
    ],
    // Numeric, not textual: 0.1.9 < 0.1.10.
    ["v0.1.9", ["v0.1.10", "v0.1.8"], "v0.1.10"],
    // Never a downgrade (hoprnet/hoprnet#8269 proposed v1.3.0 → v1.2.0).
    ["v1.3.0", ["v1.2.0", "v1.1.9"], undefined],
    // Another series: more numbers, fewer numbers, other text, a pre-release.
    ["v1.2", ["v1.2.1", "v2", "release-1.3", "v1.3-rc1"], undefined],
    ["v0.1.33", ["v0.1.40-rc1", "v0.1.34"], "v0.1.34"],
    // A pinned pre-release follows its own form.
    ["v1.0-rc1", ["v1.0-rc2", "v1.0", "v1.1-rc1"], "v1.1-rc1"],
    // The same numbers spelled otherwise are not newer.
    ["release-2026-03", ["release-2026-3", "release-2026-04"], "release-2026-04"],
    ["25.05", ["25.11", "24.11", "26.05-pre"], "25.11"],
    // Numbers beyond 2^53 still compare exactly.
    ["build-90071992547409920", ["build-90071992547409921"], "build-90071992547409921"],
    ["nightly", ["nightly-2"], undefined],
    ["v1.2", [], undefined],
  ];
  test.each(cases)("%s among %j → %s", (current, tags, newest) => {
    expect(newestRelease(current, tags)).toStrictEqual(newest);
  });
});

describe("releaseStanding: what a pushed tag means for a pin", () => {
  const cases: [current: string, pushed: string, standing: ReturnType<typeof releaseStanding>][] = [
    ["rust-engine-v0.1.33", "rust-engine-v0.1.34", "newer"],
    ["rust-engine-v0.1.33", "rust-engine-v0.1.33", "same"],
    ["rust-engine-v0.1.34", "rust-engine-v0.1.33", "older"],
    ["rust-engine-v0.1.33", "rust-engine-v0.1.40-rc1", "other-series"],
    ["rust-engine-v0.1.17", "v0.1.18", "other-series"],
  ];
  test.each(cases)("%s, pushed %s → %s", (current, pushed, standing) => {
    expect(releaseStanding(current, pushed)).toStrictEqual(standing);
  });
});
