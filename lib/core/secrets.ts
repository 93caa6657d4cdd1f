/**
 * Tokens must never reach a log, an error, an output file or a child's argv. Every line this project
 * prints goes through `redact`, which knows the token values from the environment and any registered
 * at run time.
 */

const TOKEN_VARIABLES = ["GH_TOKEN", "GITHUB_TOKEN", "INPUT_TOKEN", "FLAKE_BUMP_TOKEN"] as const;
const registered = new Set<string>();

/** Register a secret that did not come from the usual environment variables. */
export function registerSecret(value: string | undefined): void {
  // Very short values would redact ordinary words; GitHub tokens are far longer.
  if (value && value.length >= 8) registered.add(value);
}

function secrets(): string[] {
  const fromEnv = TOKEN_VARIABLES.map((name) => process.env[name]).filter(
    (value): value is string => value !== undefined && value.length >= 8,
  );
  return [...fromEnv, ...registered];
}

export function redact(text: string): string {
  let out = text;
  for (const secret of secrets()) out = out.split(secret).join("***");
  return out;
}

/** The GitHub token from the environment, as the gh CLI looks for it. */
export function githubToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const token = env.GH_TOKEN || env.GITHUB_TOKEN;
  return token ? token : undefined;
}
