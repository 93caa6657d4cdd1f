/**
 * What a user copies into their own repository, derived from this repository's workflow files — the
 * README shows exactly this, and tests/workflows.test.ts checks that it still does.
 *
 * The differences are only those that exist because the files run inside flake-bump's own
 * repository: the guard that keeps them from running here, the checkout that only a by-path
 * (`./`) action needs, and the by-path `uses:` itself, which a user writes as
 * `OWNER/flake-bump/.github/actions/NAME@SHA`. Whole-line comments go too: the README explains.
 */

export const REMOTE_ACTION = "OWNER/flake-bump/.github/actions/$1@SHA # vX.Y.Z";

export function userCopy(text: string, opts: { dropCheckout: boolean }): string {
  const out: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (/^\s*#/.test(line)) continue;
    if (line.includes("endsWith(github.repository, '/flake-bump')")) continue;
    if (opts.dropCheckout && /^\s*- uses: actions\/checkout@/.test(line)) {
      const indent = line.search(/-/);
      // The step's own lines are indented deeper than its `-`.
      while ((lines[i + 1] ?? "").search(/\S/) > indent) i++;
      continue;
    }
    const blank = line.trim() === "";
    if (blank && (out.length === 0 || out.at(-1) === "")) continue;
    out.push(line.replace(/uses: \.\/\.github\/actions\/([\w-]+)/, `uses: ${REMOTE_ACTION}`));
  }
  while (out.at(-1) === "") out.pop();
  return `${out.join("\n")}\n`;
}
