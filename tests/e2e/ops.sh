#!/usr/bin/env bash
# End-to-end operations with the real binary: `quire watch` killed with SIGKILL
# again and again while invoices arrive (each ingested exactly once), `quire
# doctor`, `quire backup`, and `quire restore` into a new data directory with
# only the key file copied, where every document is read back.
# Prints TAP. Usage: ops.sh QUIRE MAKE_INVOICE
set -u
QUIRE=$1
MAKE_INVOICE=$2
. "$(dirname "$0")/tap.sh"

work=$(mktemp -d /tmp/quire-ops-XXXXXX)
chmod 711 "$work"
unset QUIRE_CONFIG QUIRE_DATABASE_URL
export QUIRE_GENERAL_DATA_DIR="$work/a"
export QUIRE_WATCH_SETTLE_MS=300
log="$work/quire.log"
canary="CANARY-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
watch_pid=
cleanup() {
  [ -n "$watch_pid" ] && kill -9 "$watch_pid" 2>/dev/null
  QUIRE_GENERAL_DATA_DIR="$work/a" "$QUIRE" stop >/dev/null 2>&1
  QUIRE_GENERAL_DATA_DIR="$work/b" "$QUIRE" stop >/dev/null 2>&1
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
files=12

echo "1..17"
check "/ops/init" '"$QUIRE" init >>"$log" 2>&1'
# The server stays up while watchers come and go, as under systemd.
"$QUIRE" start >>"$log" 2>&1
inbox="$work/inbox"
mkdir -p "$inbox"
i=0
kills=0
while [ $i -lt $files ] || [ $kills -lt 8 ]; do
  "$QUIRE" watch "$inbox" >>"$log" 2>&1 &
  watch_pid=$!
  for _ in 1 2; do
    if [ $i -lt $files ]; then
      num=$(printf 'INV-OPS-%04d' $i)
      # Written under a temporary name and renamed in, as a careful writer does.
      "$MAKE_INVOICE" "$inbox/.tmp-$i" --number "$num" --canary "$canary"
      mv "$inbox/.tmp-$i" "$inbox/inv-$i.pdf"
      i=$((i + 1))
    fi
  done
  sleep "0.$((RANDOM % 4 + 1))"
  kill -9 $watch_pid 2>/dev/null
  wait $watch_pid 2>/dev/null
  watch_pid=
  kills=$((kills + 1))
done
"$MAKE_INVOICE" "$inbox/slow.pdf" --number INV-OPS-SLOW >/dev/null
printf 'not a PDF at all' >"$inbox/broken.pdf"
check "/ops/watch-once-after-kills" '"$QUIRE" watch --once "$inbox" >"$work/watch.out" 2>>"$log"'
check "/ops/watch-each-file-once" '[ "$(ls "$inbox"/processed | wc -l)" = $((files + 1)) ] && ! ls "$inbox"/*.pdf 2>/dev/null &&
  ! ls "$inbox"/processed | grep -q "\.1\.pdf$" && [ -f "$inbox/failed/broken.pdf" ] &&
  grep -q "not a PDF" "$inbox/failed/broken.pdf.error"'
# The watchers were killed with SIGKILL, some of them between a commit and its committed witness
# line: the prepared line each synced before its COMMIT covers that commit, so the log is intact.
verify_after_kills() {
  "$QUIRE" audit verify >"$work/verify.out" 2>"$work/verify.err"
  local rc=$?
  cat "$work/verify.out" "$work/verify.err" >>"$log"
  [ $rc = 0 ] && grep -q "^audit log intact" "$work/verify.out"
}
check "/ops/watch-documents-and-audit" '"$QUIRE" status 2>>"$log" | grep -Eq "queued +$((files + 1))$" &&
  verify_after_kills'
"$QUIRE" worker --drain >>"$log" 2>&1
"$QUIRE" stop >>"$log" 2>&1

check "/ops/doctor-ok" '"$QUIRE" doctor >"$work/doctor.out" 2>&1 && grep -q "all checks passed" "$work/doctor.out" &&
  grep -q "^ok    database reachable" "$work/doctor.out" && grep -q "^ok    Tesseract languages:.*eng" "$work/doctor.out" &&
  grep -q "^ok    the application works as database role \"quire_app\"" "$work/doctor.out"'
check "/ops/doctor-listen-reach" 'QUIRE_WEB_LISTEN="[::1]:8640" "$QUIRE" doctor 2>/dev/null | grep -q "^ok    HTTPS off" &&
  QUIRE_WEB_LISTEN=0.0.0.0:8640 "$QUIRE" doctor 2>/dev/null | grep -q "^warn  HTTPS off"'
chmod 644 "$work/a/keys/kek.key"
check "/ops/doctor-finds-bad-key-mode" '! "$QUIRE" doctor >"$work/doctor2.out" 2>&1 &&
  grep -q "^FAIL  key file .* mode 644" "$work/doctor2.out" && grep -q "fix: chmod 600" "$work/doctor2.out"'
chmod 600 "$work/a/keys/kek.key"

check "/ops/backup" '"$QUIRE" backup "$work/quire.backup" >"$work/backup.out" 2>>"$log" &&
  [ "$(stat -c %a "$work/quire.backup")" = 600 ] && grep -q "$((files + 1)) documents" "$work/backup.out"'
check "/ops/backup-refuses-overwrite" '! "$QUIRE" backup "$work/quire.backup" 2>/dev/null'
check "/ops/backup-holds-no-plaintext-or-key" '! grep -a -q "$canary" "$work/quire.backup" &&
  ! grep -a -q INV-OPS "$work/quire.backup" &&
  python3 -c "import sys; k=open(sys.argv[1],\"rb\").read(); sys.exit(k in open(sys.argv[2],\"rb\").read())" \
    "$work/a/keys/kek.key" "$work/quire.backup"'

# A new instance: only the key file is carried over, then the backup.
export QUIRE_GENERAL_DATA_DIR="$work/b"
mkdir -p "$work/b/keys"
chmod 700 "$work/b" "$work/b/keys"
check "/ops/restore-needs-key" '! "$QUIRE" restore "$work/quire.backup" 2>"$work/err1" && grep -q "copy the key" "$work/err1"'
cp "$work/a/keys/kek.key" "$work/b/keys/kek.key"
chmod 600 "$work/b/keys/kek.key"
check "/ops/restore" '"$QUIRE" restore "$work/quire.backup" >"$work/restore.out" 2>>"$log" &&
  grep -q "restored $((files + 1)) documents" "$work/restore.out" && grep -q "every document key opens" "$work/restore.out"'
# Every document of the backup, read back in the new instance: ids may have gaps (a killed
# transaction uses up its id), so look at every id up to well past the count.
"$QUIRE" start >>"$log" 2>&1
all=1
: >"$work/numbers"
for doc in $(seq 1 $((files * 3))); do
  out=$("$QUIRE" show "$doc" 2>/dev/null) || continue
  echo "$out" | grep -q "job.completed" || all=0
  echo "$out" | grep -o '"INV-OPS-[0-9A-Z]*"' | head -1 >>"$work/numbers"
done
expected=$( (for i in $(seq 0 $((files - 1))); do printf '"INV-OPS-%04d"\n' $i; done; echo '"INV-OPS-SLOW"') | sort)
check "/ops/restored-documents-read-back" '[ $all = 1 ] && [ "$(sort "$work/numbers")" = "$expected" ] &&
  "$QUIRE" status 2>>"$log" | grep -Eq "done +$((files + 1))$"'
check "/ops/restore-refuses-nonempty" '! "$QUIRE" restore "$work/quire.backup" 2>"$work/err2" &&
  grep -q "already holds $((files + 1)) documents" "$work/err2"'
cp "$work/quire.backup" "$work/damaged.backup"
size=$(stat -c %s "$work/damaged.backup")
printf 'X' | dd of="$work/damaged.backup" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
check "/ops/restore-refuses-damaged" '! "$QUIRE" restore --force "$work/damaged.backup" 2>"$work/err3" &&
  grep -q "does not match its checksum" "$work/err3"'

# The daemon watches watch.dir itself; Prometheus reads /metrics with an API token.
mkdir -p "$work/inbox2"
tok=$("$QUIRE" token create prometheus --role auditor 2>>"$log" | grep -o 'qt_[A-Za-z0-9_-]*')
QUIRE_WATCH_DIR="$work/inbox2" QUIRE_WEB_LISTEN=127.0.0.1:0 "$QUIRE" serve >"$work/serve.out" 2>>"$log" &
serve_pid=$!
wait_for 'grep -q "serving on" "$work/serve.out"'
"$MAKE_INVOICE" "$work/inbox2/served.pdf" --number INV-OPS-SERVED
wait_for '"$QUIRE" status 2>/dev/null | grep -Eq "done +$((files + 2))$"'
check "/ops/serve-watches-watch-dir" '[ -f "$work/inbox2/processed/served.pdf" ] &&
  "$QUIRE" status 2>>"$log" | grep -Eq "done +$((files + 2))$"'
port=$(sed -n 's/.*127.0.0.1:\([0-9]*\)\/.*/\1/p' "$work/serve.out")
curl -s -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/metrics" >"$work/metrics.txt"
check "/ops/metrics" 'grep -qx "quire_db_up 1" "$work/metrics.txt" && grep -qx "quire_jobs{state=\"done\"} $((files + 2))" "$work/metrics.txt" &&
  grep -q "^quire_job_duration_seconds{quantile=\"0.99\"} [0-9]" "$work/metrics.txt" &&
  grep -qx "quire_watch_rejected_total 1" "$work/metrics.txt" && grep -q "^quire_http_requests_total " "$work/metrics.txt" &&
  kill -TERM $serve_pid && wait $serve_pid'
[ "$failed" -eq 0 ]
