/**
 * `git diff --numstat` line counts for one pair of text blobs, computed the way git's xdiff (the
 * default Myers algorithm) computes them, or undefined where git's answer could differ from what is
 * computed here.
 *
 * Git's Myers diff is not always minimal. Before the diff proper, xdiff (xprepare.c) trims the common
 * head and tail, then discards lines of the middle that have no match on the other side, and also
 * those matched "too often" (at least `bogosqrt(lines)` times) that sit inside runs of unmatched
 * lines (`xdl_clean_mmatch`). Every discarded line counts as changed even if it could have been
 * matched. On what is left, Myers' search is exact until its cost reaches 256 (`XDL_MAX_COST_MIN`,
 * `XDL_HEUR_MIN_COST` in xdiffi.c), after which heuristics cut it short. So this module replays the
 * preparation exactly, takes the longest common subsequence of what is left (which any minimal edit
 * script has), and gives up when the edit distance is large enough for the heuristics to matter.
 */

/** Above this many bytes on either side, git decides; so the quadratic LCS below stays small. */
export const MAX_DIFF_BYTES = 64 * 1024;
// Both xdiff heuristics start at an edit cost of 256 per split; well below that, Myers is exact.
const MAX_EDIT_DISTANCE = 200;
// Cells of the LCS table; beyond this, git answers (the bound keeps a request in milliseconds).
const MAX_LCS_CELLS = 4_000_000;
const XDL_KPDIS_RUN = 4;
const XDL_MAX_EQLIMIT = 1024;
const XDL_SIMSCAN_WINDOW = 100;
// git's buffer_is_binary looks for a NUL in this many leading bytes (FIRST_FEW_BYTES in xdiff-interface.c).
const FIRST_FEW_BYTES = 8000;

export interface LineCounts {
  additions: number;
  deletions: number;
}

/** git's `buffer_is_binary`: a NUL byte among the first 8000. */
export function isBinary(content: Uint8Array): boolean {
  return content.subarray(0, FIRST_FEW_BYTES).includes(0);
}

/**
 * Lines added and deleted from `old` to `new` as `git diff --numstat` counts them (binary: 0 and 0,
 * where git prints "-"); undefined when only git can say (too large, or an edit too big for xdiff's
 * search to be exact).
 */
export function lineCounts(old: Uint8Array, next: Uint8Array): LineCounts | undefined {
  if (isBinary(old) || isBinary(next)) return { additions: 0, deletions: 0 };
  if (old.byteLength > MAX_DIFF_BYTES || next.byteLength > MAX_DIFF_BYTES) return undefined;
  const classes = new Map<string, number>();
  const one = records(old, classes);
  const two = records(next, classes);
  const matched = matchedLines(one, two);
  if (matched === undefined) return undefined;
  return { additions: two.length - matched, deletions: one.length - matched };
}

/**
 * A blob's lines as xdiff's records, each line with its "\n" (so a last line without one differs
 * from the same text with it), each numbered by its content's class as `xdl_classify_record` does.
 */
function records(content: Uint8Array, classes: Map<string, number>): number[] {
  const text = Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString("latin1");
  const ids: number[] = [];
  let at = 0;
  while (at < text.length) {
    const newline = text.indexOf("\n", at);
    const end = newline === -1 ? text.length : newline + 1;
    const line = text.slice(at, end);
    let id = classes.get(line);
    if (id === undefined) {
      id = classes.size;
      classes.set(line, id);
    }
    ids.push(id);
    at = end;
  }
  return ids;
}

/** How many lines xdiff leaves unchanged; undefined when its search would not be exact. */
function matchedLines(one: readonly number[], two: readonly number[]): number | undefined {
  // xdl_trim_ends: the common head, then the common tail of what remains.
  const shorter = Math.min(one.length, two.length);
  let head = 0;
  while (head < shorter && one[head] === two[head]) head++;
  let tail = 0;
  while (tail < shorter - head && one[one.length - 1 - tail] === two[two.length - 1 - tail]) tail++;
  const keptOne = kept(one, two, head, one.length - tail - 1);
  const keptTwo = kept(two, one, head, two.length - tail - 1);
  if (keptOne.length * keptTwo.length > MAX_LCS_CELLS) return undefined;
  const common = longestCommonSubsequence(keptOne, keptTwo);
  if (keptOne.length + keptTwo.length - 2 * common > MAX_EDIT_DISTANCE) return undefined;
  return head + tail + common;
}

/**
 * `xdl_cleanup_records` for one side: the classes of the lines in [start, end] that xdiff keeps for
 * the Myers search. A line is discarded (counted as changed) when the other side has no line like it,
 * or has at least `bogosqrt(lines)` of them and the line sits among unmatched ones.
 */
function kept(side: readonly number[], other: readonly number[], start: number, end: number): number[] {
  const limit = Math.min(bogosqrt(side.length), XDL_MAX_EQLIMIT);
  const inOther = new Map<number, number>();
  for (const id of other) inOther.set(id, (inOther.get(id) ?? 0) + 1);
  // 0: no match on the other side, 1: some, 2: many (xdiff's `dis`).
  const dis = new Uint8Array(side.length);
  for (let i = start; i <= end; i++) {
    const matches = Math.min(inOther.get(side[i] ?? -1) ?? 0, limit);
    dis[i] = matches === 0 ? 0 : matches >= limit ? 2 : 1;
  }
  const result: number[] = [];
  for (let i = start; i <= end; i++) {
    if (dis[i] === 1 || (dis[i] === 2 && !cleanMultiMatch(dis, i, start, end))) result.push(side[i] ?? -1);
  }
  return result;
}

/** `xdl_clean_mmatch`: whether a many-matched line at `i` is discarded among unmatched neighbours. */
function cleanMultiMatch(dis: Uint8Array, i: number, start: number, end: number): boolean {
  const s = i - start > XDL_SIMSCAN_WINDOW ? i - XDL_SIMSCAN_WINDOW : start;
  const e = end - i > XDL_SIMSCAN_WINDOW ? i + XDL_SIMSCAN_WINDOW : end;
  let unmatchedBefore = 0;
  let manyBefore = 1;
  for (let r = 1; i - r >= s; r++) {
    const value = dis[i - r];
    if (value === 0) unmatchedBefore++;
    else if (value === 2) manyBefore++;
    else break;
  }
  if (unmatchedBefore === 0) return false;
  let unmatchedAfter = 0;
  let manyAfter = 1;
  for (let r = 1; i + r <= e; r++) {
    const value = dis[i + r];
    if (value === 0) unmatchedAfter++;
    else if (value === 2) manyAfter++;
    else break;
  }
  if (unmatchedAfter === 0) return false;
  const unmatched = unmatchedBefore + unmatchedAfter;
  const many = manyBefore + manyAfter;
  return many * XDL_KPDIS_RUN < many + unmatched;
}

/** xdiff's integer square root estimate (xutils.c): a power of two near sqrt(n), at least 1. */
function bogosqrt(n: number): number {
  let root = 1;
  for (let rest = n; rest > 0; rest >>= 2) root <<= 1;
  return root;
}

/** Length of a longest common subsequence, by the classic table, one row at a time. */
function longestCommonSubsequence(one: readonly number[], two: readonly number[]): number {
  let previous = new Uint32Array(two.length + 1);
  let current = new Uint32Array(two.length + 1);
  for (const a of one) {
    for (let j = 1; j <= two.length; j++) {
      const up = previous[j] ?? 0;
      const left = current[j - 1] ?? 0;
      current[j] = a === two[j - 1] ? (previous[j - 1] ?? 0) + 1 : Math.max(up, left);
    }
    [previous, current] = [current, previous];
  }
  return previous[two.length] ?? 0;
}
