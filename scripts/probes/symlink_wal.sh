#!/usr/bin/env bash
# Probe for docs/sqlite-facts.md fact 6: a database opened through a symlink gets its -wal and
# -shm beside the target, not beside the link. Needs sqlite3 and python3.
# Run: bash scripts/probes/symlink_wal.sh
set -euo pipefail
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/real" "$dir/link"
sqlite3 "$dir/real/app.db" "PRAGMA journal_mode=WAL; CREATE TABLE t(x);" >/dev/null
ln -s "$dir/real/app.db" "$dir/link/app.db"
# Python's sqlite3 keeps the connection open while listing, so the -wal still exists.
python3 - "$dir/link/app.db" <<'PY'
import os, sqlite3, sys
link = sys.argv[1]
db = sqlite3.connect(link)
db.execute("PRAGMA wal_autocheckpoint=0")
db.execute("INSERT INTO t VALUES (1)")
db.commit()
print("beside the target:", sorted(os.listdir(os.path.dirname(os.path.realpath(link)))))
print("beside the link:  ", sorted(os.listdir(os.path.dirname(link))))
PY
