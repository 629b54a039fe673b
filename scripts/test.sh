#!/usr/bin/env bash
# Runs the whole test suite (installing what it needs first) and ends with exactly one
# line `N passed, N failed`, counting top-level tests. Extra arguments go to `deno test`
# (e.g. `bash scripts/test.sh --filter s3:`). Exits with deno's exit code.
# shellcheck disable=SC2317 # install-deps.sh exits only when run, never when sourced
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

# shellcheck source=scripts/install-deps.sh
if ! source scripts/install-deps.sh; then
  echo "0 passed, 1 failed"
  exit 1
fi

# Deno colours its output even into a pipe; plain text reads better in a CI log.
[ -t 1 ] || export NO_COLOR=1

log="$(mktemp -t walsync-test.XXXXXX)"
# ink draws only its last frame when it sees CI set (is-in-ci); the wizard's tests need every
# frame, as an operator's terminal gets, so CI's marker variables are kept from the tests.
env -u CI -u CONTINUOUS_INTEGRATION deno test -A --frozen test/ "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# Deno's closing line: `ok | 12 passed (34 steps) | 0 failed (3s)` or
# `FAILED | 3 passed | 1 failed (1s)`; the numbers in parentheses count steps, not tests.
summary="$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)"
echo "test log: $log" >&2
if [ -z "$summary" ]; then
  echo "0 passed, 1 failed"
  exit 1
fi
passed="$(sed -E 's/^[A-Za-z]+ \| ([0-9]+) passed.*/\1/' <<<"$summary")"
failed="$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")"
echo "$passed passed, $failed failed"
exit "$status"
