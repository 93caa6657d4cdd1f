/** Small, pure statistics for the benchmark: medians resist the odd slow run that means nothing. */

/** The median of a non-empty list (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of no values; measure at least once");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const upper = sorted[mid] ?? 0;
  if (sorted.length % 2 === 1) return upper;
  return ((sorted[mid - 1] ?? upper) + upper) / 2;
}

export function max(values: readonly number[]): number {
  if (values.length === 0) throw new Error("max of no values; measure at least once");
  return Math.max(...values);
}

/** Round for display and JSON: sub-millisecond noise is not information. */
export function round(value: number, digits = 1): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
