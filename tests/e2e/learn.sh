#!/usr/bin/env bash
# End-to-end: learning from corrections with the real binary and database. A
# reviewer corrects a field through the API to a value written elsewhere on the
# page; the same supplier's next document is read there ("learned": true), also
# in a new instance restored from a backup of the first; erasing the corrected
# document forgets what was learned from it. Prints TAP. Usage: learn.sh QUIRE MAKE_INVOICE
set -u
QUIRE=$1
MAKE_INVOICE=$2
. "$(dirname "$0")/tap.sh"

work=$(mktemp -d /tmp/quire-learn-XXXXXX)
chmod 711 "$work"
unset QUIRE_CONFIG QUIRE_DATABASE_URL QUIRE_MODEL_PATH QUIRE_MODEL_ENDPOINT
export QUIRE_GENERAL_DATA_DIR="$work/a"
log="$work/quire.log"
serve_pid=
cleanup() {
  [ -n "$serve_pid" ] && kill -TERM "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  QUIRE_GENERAL_DATA_DIR="$work/a" "$QUIRE" stop >/dev/null 2>&1
  QUIRE_GENERAL_DATA_DIR="$work/b" "$QUIRE" stop >/dev/null 2>&1
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
submit() { "$QUIRE" submit "$1" 2>>"$log" | sed -n 's/.*: document \([0-9]*\),.*/\1/p'; }
# number DOC: the invoice number of a document's result, and whether it was learned
number() { "$QUIRE" show "$1" 2>>"$log" | python3 -c '
import json, sys
text = sys.stdin.read()
r = json.loads(text[text.index("{"):text.rindex("}") + 1])
f = r["fields"]["invoice_number"]
print(f["value"], "learned" if f.get("learned") else "read")' 2>>"$log"; }

for i in 1 2 3 4; do "$MAKE_INVOICE" "$work/$i.pdf" --number "INV-L-$i" --canary "REF-$i$i$i$i" >/dev/null; done
echo "1..6"
"$QUIRE" init >>"$log" 2>&1 || { echo "Bail out! quire init failed"; exit 1; }
"$QUIRE" start >>"$log" 2>&1
tok=$("$QUIRE" token create reviewer-token --role reviewer 2>>"$log" | grep -o 'qt_[A-Za-z0-9_-]*')
d1=$(submit "$work/1.pdf")
"$QUIRE" worker --drain >>"$log" 2>&1
check "/learn/read-by-the-reader-first" '[ "$(number "$d1")" = "INV-L-1 read" ]'

QUIRE_WEB_LISTEN=127.0.0.1:0 "$QUIRE" serve >"$work/serve.out" 2>>"$log" &
serve_pid=$!
wait_for 'grep -q "serving on" "$work/serve.out" 2>/dev/null' ||
  { echo "Bail out! quire serve did not start"; exit 1; }
B=http://127.0.0.1:$(sed -n 's/.*127.0.0.1:\([0-9]*\)\/.*/\1/p' "$work/serve.out")
corr=$(curl -s -H "Authorization: Bearer $tok" -H "Content-Type: application/json" \
  -d '{"fields":{"invoice_number":"REF-1111"}}' "$B/api/v1/documents/$d1/corrections")
kill -TERM "$serve_pid" && wait "$serve_pid"
serve_pid=
check "/learn/correction-saved" 'echo "$corr" | grep -q "\"version\":2"'

d2=$(submit "$work/2.pdf")
"$QUIRE" worker --drain >>"$log" 2>&1
check "/learn/next-document-read-where-corrected" '[ "$(number "$d2")" = "REF-2222 learned" ]'

"$QUIRE" backup "$work/quire.backup" >>"$log" 2>&1
"$QUIRE" stop >>"$log" 2>&1
export QUIRE_GENERAL_DATA_DIR="$work/b"
mkdir -p "$work/b/keys"
chmod 700 "$work/b" "$work/b/keys"
cp "$work/a/keys/kek.key" "$work/b/keys/kek.key"
chmod 600 "$work/b/keys/kek.key"
"$QUIRE" restore "$work/quire.backup" >>"$log" 2>&1
"$QUIRE" start >>"$log" 2>&1
d3=$(submit "$work/3.pdf")
"$QUIRE" worker --drain >>"$log" 2>&1
check "/learn/survives-backup-and-restore" '[ -n "$d3" ] && [ "$(number "$d3")" = "REF-3333 learned" ]'

check "/learn/erase" '"$QUIRE" erase --yes --no-rotate "$d1" >>"$log" 2>&1'
d4=$(submit "$work/4.pdf")
"$QUIRE" worker --drain >>"$log" 2>&1
check "/learn/erasure-forgets" '[ "$(number "$d4")" = "INV-L-4 read" ]'
[ "$failed" -eq 0 ]
