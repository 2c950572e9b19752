#!/usr/bin/env bash
# End-to-end: the work figures on /metrics. A scanned invoice (image-only page)
# and a text invoice go through `quire serve` with a small random-weight model
# (tests/runtime/gen_gguf.c) reading the fields; Prometheus' view then shows
# the OCR page, the pages by method, the model's tokens and generation time.
# Prints TAP. Usage: metrics.sh QUIRE MAKE_INVOICE GEN_GGUF
set -u
QUIRE=$1
MAKE_INVOICE=$2
GEN_GGUF=$3
. "$(dirname "$0")/tap.sh"

work=$(mktemp -d /tmp/quire-e2e-XXXXXX)
chmod 711 "$work"
export QUIRE_GENERAL_DATA_DIR="$work/data" QUIRE_WEB_LISTEN=127.0.0.1:0
unset QUIRE_CONFIG QUIRE_DATABASE_URL
log="$work/quire.log"
serve_pid=
cleanup() {
  [ -n "$serve_pid" ] && kill -TERM "$serve_pid" 2>/dev/null && wait "$serve_pid"
  "$QUIRE" stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
# the value of one sample line of the metrics text ("" when absent)
sample() { grep -F "$1 " "$work/metrics.txt" | grep -v '^#' | awk '{print $NF}' | head -1; }
positive() { awk -v v="$1" 'BEGIN { exit !(v > 0) }'; }

echo "1..6"
"$MAKE_INVOICE" "$work/scan.pdf" --scan --number INV-SCAN-1
"$MAKE_INVOICE" "$work/text.pdf" --number INV-TEXT-1
"$GEN_GGUF" --out "$work/tiny.gguf" --shape synth --type Q8_0 >>"$log" 2>&1
check "/e2e/metrics/init" '"$QUIRE" init >>"$log" 2>&1 && "$QUIRE" start >>"$log" 2>&1'
tok=$("$QUIRE" token create prometheus --role auditor 2>>"$log" | grep -o 'qt_[A-Za-z0-9_-]*')
QUIRE_MODEL_PATH="$work/tiny.gguf" QUIRE_MODEL_CONTEXT=1024 "$QUIRE" serve >"$work/serve.out" 2>>"$log" &
serve_pid=$!
wait_for 'grep -q "serving on" "$work/serve.out"'
port=$(sed -n 's/.*127.0.0.1:\([0-9]*\)\/.*/\1/p' "$work/serve.out")
curl -s -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/metrics" >"$work/metrics.txt"
check "/e2e/metrics/zero-before-work" '[ "$(sample quire_ocr_pages_total)" = 0 ] &&
  [ "$(sample "quire_model_tokens_total{kind=\"generated\"}")" = 0 ]'

"$QUIRE" submit "$work/scan.pdf" "$work/text.pdf" >>"$log" 2>&1
wait_for '"$QUIRE" status 2>/dev/null | grep -Eq "done +2$"'
check "/e2e/metrics/processed" '"$QUIRE" status 2>>"$log" | grep -Eq "done +2$"'
curl -s -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/metrics" >"$work/metrics.txt"
check "/e2e/metrics/ocr-pages" 'grep -qx "# TYPE quire_ocr_pages_total counter" "$work/metrics.txt" &&
  [ "$(sample quire_ocr_pages_total)" = 1 ] && [ "$(sample "quire_pages_read_total{method=\"ocr\"}")" = 1 ] &&
  [ "$(sample "quire_pages_read_total{method=\"text\"}")" = 1 ] &&
  [ "$(sample "quire_pages_read_total{method=\"none\"}")" = 0 ]'
check "/e2e/metrics/model-tokens" '[ "$(sample quire_model_documents_total)" = 2 ] &&
  positive "$(sample "quire_model_tokens_total{kind=\"generated\"}")" &&
  positive "$(sample "quire_model_tokens_total{kind=\"prompt\"}")" &&
  positive "$(sample quire_model_generation_seconds_total)" && positive "$(sample quire_model_tokens_per_second)"'
kill -TERM $serve_pid
wait $serve_pid
serve_pid=
# counted once per job, in the database: a second scrape through a new server sees the same
# emptied first: the background job's own redirection may come after the wait below has read
# the first server's address
: >"$work/serve.out"
QUIRE_MODEL_PATH= "$QUIRE" web >"$work/serve.out" 2>>"$log" &
serve_pid=$!
wait_for 'grep -q "serving on" "$work/serve.out"'
port=$(sed -n 's/.*127.0.0.1:\([0-9]*\)\/.*/\1/p' "$work/serve.out")
cp "$work/metrics.txt" "$work/before.txt"
curl -s -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/metrics" >"$work/metrics.txt"
check "/e2e/metrics/survive-restart" '[ "$(sample quire_ocr_pages_total)" = 1 ] &&
  [ "$(grep "^quire_model_tokens_total" "$work/metrics.txt")" = "$(grep "^quire_model_tokens_total" "$work/before.txt")" ]'
[ "$failed" -eq 0 ]
