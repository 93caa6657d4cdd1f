/**
 * Release tags as a series: `rust-engine-v0.1.17` belongs to `rust-engine-v<n>.<n>.<n>`, and a newer
 * release of it is a tag of the same series with a larger numeric tuple. Pure functions: which tags
 * exist is GitHub's answer, asked elsewhere.
 *
 * The series is the tag's text with every run of digits made free, keeping how many there are. So
 * `v1.2` (`v<n>.<n>`) and `v1.2.1` (`v<n>.<n>.<n>`) are different series, and a pre-release such as
 * `v0.1.40-rc1` (`v<n>.<n>.<n>-rc<n>`) is never taken for a release of `v<n>.<n>.<n>` — unless the
 * pinned tag is itself a pre-release of that form.
 */

export interface ReleaseTag {
  tag: string;
  /** The text around the numbers, e.g. `["rust-engine-v", ".", ".", ""]`: one more than `numbers`. */
  shape: readonly string[];
  /** The numeric parts in order, e.g. `[0n, 1n, 17n]` (bigint: a date-like `20260301` must not round). */
  numbers: readonly bigint[];
}

/** The tag as a series member, or undefined when it has no number in it (it then has no successor). */
export function releaseTag(tag: string): ReleaseTag | undefined {
  const parts = tag.split(/(\d+)/);
  const shape = parts.filter((_, i) => i % 2 === 0);
  const numbers = parts.filter((_, i) => i % 2 === 1).map((digits) => BigInt(digits));
  return numbers.length === 0 ? undefined : { tag, shape, numbers };
}

/** `rust-engine-v<n>.<n>.<n>`: how the series is named in messages. */
export function seriesName(tag: ReleaseTag): string {
  return tag.shape.join("<n>");
}

export function sameSeries(a: ReleaseTag, b: ReleaseTag): boolean {
  return a.shape.length === b.shape.length && a.shape.every((text, i) => text === b.shape[i]);
}

/** Negative when `a` is older than `b`, positive when newer, 0 for the same numbers (`v1.02` and `v1.2`). */
export function compareReleases(a: ReleaseTag, b: ReleaseTag): number {
  for (let i = 0; i < a.numbers.length; i++) {
    const [x, y] = [a.numbers[i] ?? 0n, b.numbers[i] ?? 0n];
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * The newest of `tags` in the series of `current` that is strictly newer than it, or undefined: never
 * a downgrade, never a tag of another series. Among tags with equal numbers (`v1.2` and `v1.02`) the
 * first given wins, so the answer does not depend on anything but the order GitHub lists them in.
 */
export function newestRelease(current: string, tags: readonly string[]): string | undefined {
  const pinned = releaseTag(current);
  if (pinned === undefined) return undefined;
  let best: ReleaseTag | undefined;
  for (const tag of tags) {
    const candidate = releaseTag(tag);
    if (candidate === undefined || !sameSeries(candidate, pinned)) continue;
    if (compareReleases(candidate, pinned) <= 0) continue;
    if (best === undefined || compareReleases(candidate, best) > 0) best = candidate;
  }
  return best?.tag;
}

/** How `candidate` stands to the pinned tag `current`: what a pushed tag means for an input pinned to `current`. */
export type ReleaseStanding = "newer" | "same" | "older" | "other-series";

export function releaseStanding(current: string, candidate: string): ReleaseStanding {
  const [pinned, pushed] = [releaseTag(current), releaseTag(candidate)];
  if (pinned === undefined || pushed === undefined || !sameSeries(pinned, pushed)) return "other-series";
  const order = compareReleases(pushed, pinned);
  return order > 0 ? "newer" : order < 0 ? "older" : "same";
}
