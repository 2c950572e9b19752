#!/usr/bin/env bash
# End-to-end: the services' own audit entries. `quire serve`, `quire web` and
# `quire worker` record their start and stop (actor system:<service>, where
# <host>/<pid>); a start with other settings than the host's last one records
# config.changed naming them, without the value of a credential. Under journald
# (JOURNAL_STREAM names stderr) log lines carry no timestamp of their own.
# Prints TAP. Usage: service.sh QUIRE
set -u
QUIRE=$1
. "$(dirname "$0")/tap.sh"

work=$(mktemp -d /tmp/quire-e2e-XXXXXX)
chmod 711 "$work"
export QUIRE_GENERAL_DATA_DIR="$work/data" QUIRE_WEB_LISTEN=127.0.0.1:0
unset QUIRE_CONFIG QUIRE_DATABASE_URL
log="$work/quire.log"
cleanup() { "$QUIRE" stop >/dev/null 2>&1; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
psql=$(ls -d /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -1)
[ -n "$psql" ] || psql=$(command -v psql)
# audit rows as "actor|action|outcome|client|detail", oldest first
audit() { "$psql" -h "$work/data/run" -U quire -d quire -XAtc \
  "SELECT actor, action, outcome, client, detail FROM audit_log WHERE object_type = 'service' ORDER BY id"; }
host=$(hostname)

echo "1..7"
check "/e2e/service/init" '"$QUIRE" init >>"$log" 2>&1 && "$QUIRE" start >>"$log" 2>&1'

"$QUIRE" serve >"$work/serve.out" 2>>"$log" &
pid=$!
wait_for 'grep -q "serving on" "$work/serve.out"'
kill -TERM $pid
wait $pid
audit >"$work/a1"
check "/e2e/service/serve-start-and-stop" 'grep -q "^system:serve|service.started|ok|$host/$pid|quire " "$work/a1" &&
  grep -q "^system:serve|service.stopped|ok|$host/$pid|after " "$work/a1" && ! grep -q config.changed "$work/a1"'

printf '[limits]\nmax_pages = 321\n[model]\nendpoint =\n' >"$work/quire.conf"
"$QUIRE" --config "$work/quire.conf" worker --drain >>"$log" 2>&1
audit >"$work/a2"
check "/e2e/service/config-change-named" 'grep -q "^system:worker|config.changed|ok|$host/[0-9]*|limits.max_pages: \"2000\" -> \"321\"$" "$work/a2" &&
  grep -q "^system:worker|service.started|ok|$host/[0-9]*|quire .*; configuration $work/quire.conf (" "$work/a2" &&
  [ "$(grep -c "service.stopped" "$work/a2")" = 2 ]'

# a credential in a setting: the change is named, the value nowhere
printf '[limits]\nmax_pages = 321\n[database]\nurl = host=%s dbname=quire user=quire password=e2e-hunter2\n' \
  "$work/data/run" >"$work/quire.conf"
"$QUIRE" --config "$work/quire.conf" worker --drain >>"$log" 2>&1
audit >"$work/a3"
check "/e2e/service/secret-not-shown" 'grep -q "config.changed|ok|$host/[0-9]*|database.url: changed (not shown)$" "$work/a3" &&
  ! grep -q hunter2 "$work/a3" && ! grep -q hunter2 "$log" &&
  ! "$psql" -h "$work/data/run" -U quire -d quire -XAtc "SELECT settings FROM config_state" | grep -q hunter2'

"$QUIRE" --config "$work/quire.conf" worker --drain >>"$log" 2>&1
audit >"$work/a4"
check "/e2e/service/unchanged-not-recorded" '[ "$(grep -c config.changed "$work/a4")" = 2 ] &&
  [ "$(grep -c service.started "$work/a4")" = 4 ] && "$QUIRE" audit verify 2>>"$log" | grep -q "audit log intact"'
# stderr is the journal's stream when JOURNAL_STREAM names its device and inode
: >"$work/journal.txt"
stream=$(stat -c '%d:%i' "$work/journal.txt")
JOURNAL_STREAM=$stream "$QUIRE" --config "$work/quire.conf" worker --drain 2>>"$work/journal.txt"
check "/e2e/service/journal-lines-without-time" 'grep -q "^<6>quire info: worker .* started" "$work/journal.txt" &&
  ! grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2}T" "$work/journal.txt"'
: >"$work/elsewhere.txt"
JOURNAL_STREAM=$stream "$QUIRE" --config "$work/quire.conf" worker --drain 2>>"$work/elsewhere.txt"
check "/e2e/service/other-stream-lines-with-time" 'grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z quire info: worker .* started" "$work/elsewhere.txt"'
[ "$failed" -eq 0 ]
