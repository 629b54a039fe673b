#!/usr/bin/env bash
# Walsync's main job, end to end, on a fresh machine and with no server: a sample database
# is backed up continuously to a local directory used as the bucket (file://) while a
# writer commits, then restored, verified and compared with the source.
#   bash scripts/demo.sh            # keeps its files in a temporary directory and prints where
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/install-deps.sh
WALSYNC_NO_MINIO=1 source scripts/install-deps.sh

work="$(mktemp -d -t walsync-demo.XXXXXX)"
bucket="file://$work/bucket"
walsync() { deno run -A --quiet main.ts "$@"; }
say() { printf '\n== %s\n' "$*"; }

say "creating a sample database $work/app.db (sqlite3 CLI)"
sqlite3 "$work/app.db" <<'SQL' >/dev/null
PRAGMA journal_mode=WAL;
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT NOT NULL, total REAL, receipt BLOB);
CREATE INDEX orders_customer ON orders(customer);
INSERT INTO orders(customer, total, receipt)
  SELECT 'customer-' || (value % 97), value * 1.25, randomblob(512) FROM generate_series(1, 5000);
SQL

say "walsync watch: continuous backup to $bucket"
# Started directly (not through the shell function) so that $! is the walsync process.
deno run -A --quiet main.ts watch "$work/app.db" --bucket "$bucket" --sync-interval 500ms 2>"$work/watch.log" &
watcher=$!
trap 'kill "$watcher" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do grep -q "snapshot uploaded" "$work/watch.log" && break; sleep 0.2; done

say "a writer commits 200 transactions while walsync watches"
for i in $(seq 1 200); do
  echo "INSERT INTO orders(customer, total, receipt) VALUES ('live-$i', $i, randomblob(256));"
done | sqlite3 "$work/app.db"
sleep 1.5
kill -TERM "$watcher"
wait "$watcher" || true
trap - EXIT
cat "$work/watch.log"

say "walsync list"
walsync list --bucket "$bucket" --checksums
say "walsync verify"
walsync verify app.db --bucket "$bucket"
say "walsync restore"
walsync restore app.db --bucket "$bucket" -o "$work/restored.db"

say "comparing the restored database with the source (sqlite3 CLI)"
source_hash="$(sqlite3 "$work/app.db" .sha3sum)"
restored_hash="$(sqlite3 "$work/restored.db" .sha3sum)"
integrity="$(sqlite3 "$work/restored.db" 'PRAGMA integrity_check;')"
echo "rows: source $(sqlite3 "$work/app.db" 'SELECT count(*) FROM orders;'), restored $(sqlite3 "$work/restored.db" 'SELECT count(*) FROM orders;')"
echo "integrity_check: $integrity"
if [ "$source_hash" = "$restored_hash" ] && [ "$integrity" = "ok" ]; then
  echo "✓ restored database is identical to the source ($work)"
else
  echo "✗ restored database differs from the source ($work)" >&2
  exit 1
fi
