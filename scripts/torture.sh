#!/usr/bin/env bash
# Runs Walsync's randomized torture test (test/support/torture/) until the time is up: random commits,
# checkpoints, VACUUM, page-size changes, WAL restarts, a deleted and recreated database, watch
# SIGKILLed and restarted, storage outages, symlinked paths; after every quiet period a restore
# must equal the source and recorded points must restore by --txid to what the source held then.
#
#   scripts/torture.sh [--minutes N] [--seed S] [--backend file|s3|both] [--verbose]
#                      [--without symlink,walRewrite,killWriter,fileOutage]
#
# Every operation is on, including those behind known bugs that the CI run leaves out
# (see test/e2e/torture_test.ts). A new random seed per round unless --seed is given (then one round,
# a replay). A failure prints `torture: seed S step K: <what differed>` and exits 1.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
# shellcheck source=scripts/install-deps.sh
source scripts/install-deps.sh >/dev/null || exit 1
exec deno run -A --frozen test/support/torture/main.ts "$@"
