#!/bin/bash
# argv-shim.sh TOOL REAL [ARGS...] — stands in for a program on PATH in tests (tests/secrets.test.ts):
# appends this call's argv to $FLAKE_BUMP_ARGV_LOG as one JSON line, then execs the real program.
# The shebang names /bin/bash itself: `env bash` would find a `bash` shim first on PATH and loop.
set -u
tool=$1
real=$2
shift 2

if [ -n "${FLAKE_BUMP_ARGV_LOG:-}" ]; then
  # JSON string escaping for what argv can hold in practice; anything else makes the line invalid
  # JSON, which the test reports instead of silently skipping.
  quote() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    printf '"%s"' "$s"
  }
  # Whether a token reached this process the documented way (NIX_CONFIG access-tokens), so the test
  # can tell "passed through the environment" from "not passed at all".
  env_token=false
  case "${NIX_CONFIG:-}" in *access-tokens*) env_token=true ;; esac
  line="{\"tool\":$(quote "$tool"),\"accessTokensInEnv\":$env_token,\"argv\":["
  sep=""
  for arg in "$@"; do
    line+="$sep$(quote "$arg")"
    sep=","
  done
  line+="]}"
  # One write per call, so lines from concurrent calls do not interleave.
  printf '%s\n' "$line" >>"$FLAKE_BUMP_ARGV_LOG"
fi
exec "$real" "$@"
