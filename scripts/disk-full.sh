#!/usr/bin/env bash
# Disk full under a running `clickprompt run` (needs root for `mount`; not part of CI):
# a 3 MiB tmpfs holds the run database and a filler file; the tiny experiment is
# recorded over and over until the file system is full. Checks that the failing
# command exits 6 with a message naming the database and "disk is full", and that
# after space is freed the database passes `PRAGMA integrity_check` and every run
# that had FINISHED before keeps exactly its metric rows.
#
#   scripts/disk-full.sh            # uses target/release/clickprompt (built if missing)
#   BIN=path/to/clickprompt scripts/disk-full.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/clickprompt}
[ -x "$BIN" ] || cargo build --release --bin clickprompt >&2
WORK=$(mktemp -d)
MNT=$WORK/mnt
mkdir -p "$MNT"
mount -t tmpfs -o size=3m tmpfs "$MNT"
trap 'umount "$MNT" 2>/dev/null; rm -rf "$WORK"' EXIT
DB=$MNT/runs.db

fail() { echo "disk-full: FAIL: $*" >&2; exit 1; }

# Most of the space goes to a filler, so a few runs fill the rest.
dd if=/dev/zero of="$MNT/filler" bs=64k count=36 status=none
code=0
for i in $(seq 1 200); do
  set +e
  "$BIN" run scripts/tiny-ctr.cp --db "$DB" --cache-dir "$WORK/cache" --checkpoints "$WORK/ckpt" >"$WORK/out.$i" 2>"$WORK/err.$i"
  code=$?
  set -e
  [ "$code" -eq 0 ] || break
  # Record what each finished run stored while the disk still has room.
  sqlite3 "$DB" "SELECT id, (SELECT COUNT(*) FROM metrics m WHERE m.run_id = r.id) FROM runs r WHERE status = 'FINISHED'" >"$WORK/finished.$i"
done
[ "$code" -ne 0 ] || fail "200 runs fitted in 3 MiB; the disk never filled"
last_ok=$((i - 1))
echo "run $i failed with exit code $code after $last_ok finished runs" >&2
sed 's/^/  | /' "$WORK/err.$i" | tail -5 >&2
[ "$code" -eq 6 ] || fail "exit code $code, expected 6 (disk full)"
grep -q "disk is full" "$WORK/err.$i" || fail "message does not say the disk is full"
grep -q "$DB" "$WORK/err.$i" || fail "message does not name $DB"

rm -f "$MNT/filler"
[ "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
if [ "$last_ok" -ge 1 ]; then
  sqlite3 "$DB" "SELECT id, (SELECT COUNT(*) FROM metrics m WHERE m.run_id = r.id) FROM runs r WHERE status = 'FINISHED' AND id IN (SELECT id FROM runs ORDER BY id LIMIT $last_ok)" >"$WORK/after"
  diff "$WORK/finished.$last_ok" "$WORK/after" >&2 || fail "committed metric rows changed"
fi
# The run cut off is marked (FAILED by itself, or INTERRUPTED by the next open).
"$BIN" runs list --db "$DB" >/dev/null || fail "runs list after freeing space"
echo "statuses: $(sqlite3 "$DB" "SELECT status || ':' || COUNT(*) FROM runs GROUP BY status" | tr '\n' ' ')" >&2
running=$(sqlite3 "$DB" "SELECT COUNT(*) FROM runs WHERE status = 'RUNNING'")
[ "$running" -eq 0 ] || fail "$running run(s) still RUNNING after the next open"
echo "disk-full: OK (exit code 6, $last_ok finished runs intact, integrity ok)"
