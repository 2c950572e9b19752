#!/usr/bin/env bash
# End-to-end: failover of the database under two workers, with nothing lost or doubled.
# A primary and a streaming standby (pg_basebackup -R, synchronous replication) on this
# machine; two `quire worker` processes, each with a data directory of its own (as two hosts
# would have) and only the database in common, follow a multi-host connection string with
# target_session_attrs=read-write. Mid-run the primary is killed (immediate stop) and the
# standby promoted; the same worker processes reconnect to it and finish. Then every document
# is processed once, with one completion and one result, the job of each done, and
# `quire audit verify` passes on the new primary.
# Prints TAP. Usage: failover.sh QUIRE MAKE_INVOICE
set -u
QUIRE=$1
MAKE_INVOICE=$2
here=$(dirname "$0")
. "$here/tap.sh"
. "$here/pgcluster.sh"

DOCS=${FAILOVER_DOCS:-200}
work=$(mktemp -d /tmp/quire-e2e-fo-XXXXXX)
chmod 711 "$work"
unset QUIRE_CONFIG QUIRE_DATABASE_URL QUIRE_PASSPHRASE CREDENTIALS_DIRECTORY
log="$work/quire.log"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  pg_down "$work/primary" immediate
  pg_down "$work/standby" immediate
  rm -rf "$work"
}
trap cleanup EXIT

echo "1..8"
p1=$(free_port)
p2=$(free_port)
while [ "$p2" = "$p1" ]; do p2=$(free_port); done
pg_new "$work/primary" "$p1" && pg_up "$work/primary" &&
  PGDB=postgres psql_at "$p1" -c "CREATE DATABASE quire" >>"$log" 2>&1 &&
  "$pg_bindir/pg_basebackup" -d "host=127.0.0.1 port=$p1 user=quire application_name=standby1" -D "$work/standby" \
    -R -X stream -c fast >>"$log" 2>&1 &&
  { [ "$(id -u)" -ne 0 ] || chown -R postgres: "$work/standby"; } &&
  chmod 700 "$work/standby" &&
  printf "port = %s\nunix_socket_directories = '%s'\n" "$p2" "$work/standby" | as_pg tee -a "$work/standby/postgresql.auto.conf" >/dev/null &&
  pg_up "$work/standby"
standby_streaming() { [ "$(psql_at "$p1" -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = '$1'" 2>/dev/null)" = 1 ]; }
check "/e2e/failover/standby-streaming" 'wait_for 60 "standby_streaming async"'
# Synchronous: a commit returns once the standby has it, so a promotion loses nothing acknowledged.
psql_at "$p1" -c "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" -c "SELECT pg_reload_conf()" >>"$log" 2>&1
check "/e2e/failover/standby-synchronous" 'wait_for 60 "standby_streaming sync"'

url="host=127.0.0.1,127.0.0.1 port=$p1,$p2 dbname=quire user=quire target_session_attrs=read-write connect_timeout=3"
export QUIRE_DATABASE_URL="$url" QUIRE_WORKER_LEASE_S=20 QUIRE_WORKER_POLL_MS=500
hostA="$work/hostA" hostB="$work/hostB"
# Host A initialises the database and the keyring (in the database); host B gets only the key.
QUIRE_GENERAL_DATA_DIR="$hostA" "$QUIRE" init >>"$log" 2>&1
mkdir -p "$hostB/keys" && chmod 700 "$hostB" "$hostB/keys" &&
  cp "$hostA/keys/kek.key" "$hostB/keys/kek.key" && chmod 600 "$hostB/keys/kek.key"
mkdir -p "$work/pdf"
for i in $(seq 1 "$DOCS"); do "$MAKE_INVOICE" "$work/pdf/inv-$i.pdf" --number "INV-FO-$i" || break; done
QUIRE_GENERAL_DATA_DIR="$hostA" "$QUIRE" submit "$work"/pdf/inv-*.pdf >"$work/submitted" 2>>"$log"
check "/e2e/failover/submitted" '[ "$(grep -c "document [0-9]*," "$work/submitted")" -eq "$DOCS" ]'

QUIRE_GENERAL_DATA_DIR="$hostA" "$QUIRE" worker >>"$work/workerA.log" 2>&1 &
wa=$!
QUIRE_GENERAL_DATA_DIR="$hostB" "$QUIRE" worker >>"$work/workerB.log" 2>&1 &
wb=$!
pids=("$wa" "$wb")
done_count() { psql_at "$1" -c "SELECT count(*) FROM documents WHERE state = 'processed'" 2>/dev/null || echo 0; }
# Mid-run: a third of the documents processed, then the primary dies and the standby takes over.
wait_for 300 '[ "$(done_count "$p1")" -ge $((DOCS / 3)) ]'
before=$(done_count "$p1")
pg_down "$work/primary" immediate
as_pg "$pg_bindir/pg_ctl" -D "$work/standby" -w -t 60 promote >>"$log" 2>&1
promoted_at=$(psql_at "$p2" -c "SELECT now()" 2>>"$log")
check "/e2e/failover/promoted-mid-run" '[ "$before" -lt "$DOCS" ] && pg_stopped "$work/primary" &&
  [ "$(psql_at "$p2" -c "SELECT pg_is_in_recovery()")" = f ]'
check "/e2e/failover/all-processed-after-failover" 'wait_for 600 "[ \"\$(done_count $p2)\" -ge $DOCS ]"'
# The same two processes, reconnected to the new primary, both finished jobs there.
check "/e2e/failover/same-workers-reconnected" 'kill -0 "$wa" && kill -0 "$wb" &&
  [ "$(psql_at "$p2" -c "SELECT count(DISTINCT worker) FROM jobs WHERE finished_at > '"'"'$promoted_at'"'"'")" -eq 2 ]'
kill -TERM "$wa" "$wb"
wait "$wa" "$wb" 2>/dev/null
pids=()
# Exactly once in effect: one done job, one completion entry and one result per document.
check "/e2e/failover/each-once" '[ "$(psql_at "$p2" -c "
  SELECT count(*) FROM documents d WHERE d.state = '"'"'processed'"'"'
     AND (SELECT count(*) FROM jobs j WHERE j.document_id = d.id AND j.state = '"'"'done'"'"') = 1
     AND (SELECT count(*) FROM audit_log a WHERE a.action = '"'"'job.completed'"'"' AND a.object_id = d.id) = 1
     AND (SELECT count(*) FROM audit_log a WHERE a.action = '"'"'document.submitted'"'"' AND a.object_id = d.id) = 1
     AND (SELECT count(*) FROM payloads p WHERE p.document_id = d.id AND p.purpose = '"'"'result'"'"') = 1")" -eq "$DOCS" ] &&
  [ "$(psql_at "$p2" -c "SELECT count(*) FROM documents")" -eq "$DOCS" ]'
# Each host keeps the signed heads of what it appended (its witness file); all of them together
# must cover every entry on the new primary.
check "/e2e/failover/audit-verify-on-new-primary" 'QUIRE_GENERAL_DATA_DIR="$hostA" "$QUIRE" audit verify \
  --witness "$hostA/keys/audit.witness" --witness "$hostB/keys/audit.witness" 2>>"$log" | grep -q "audit log intact"'
if [ "$failed" -ne 0 ]; then
  tail -n 30 "$work/workerA.log" "$work/workerB.log" "$log" "$work/primary/server.log" "$work/standby/server.log" >&2
fi
[ "$failed" -eq 0 ]
