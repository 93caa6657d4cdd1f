/**
 * Ways not to reach GitHub, for the tests of what the client and the scripts then do: a host name
 * that never resolves, and a fetch that counts what it sends (what reaches no server cannot be
 * counted by the fake).
 */

/** A name in the reserved .invalid domain (RFC 6761): no resolver ever answers it. */
export const UNRESOLVABLE = "api.flake-bump-test.invalid";

/** A real fetch that counts the requests it sends. */
export function countingFetch(): { fetch: typeof fetch; count: () => number } {
  let count = 0;
  const counting = Object.assign(
    (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
      count++;
      return fetch(input, init);
    },
    { preconnect: fetch.preconnect },
  );
  return { fetch: counting, count: () => count };
}
