#!/usr/bin/env bash
# Browser test: a fresh instance, one admin, `quire serve`, then review.mjs in
# the system's headless Chromium through playwright-core, with axe-core for the
# accessibility checks (tests/browser/node_modules,
# installed by `npm ci` from package-lock.json). Screenshots go to $QUIRE_SCREENSHOTS
# (default: screenshots/ in the build directory). Prints TAP.
# Usage: run.sh QUIRE MAKE_INVOICE
set -u
QUIRE=$1
MAKE_INVOICE=$2
here=$(cd "$(dirname "$0")" && pwd)
out=${QUIRE_SCREENSHOTS:-${QUIRE_BUILD_DIR:-$here}/screenshots}
if [ ! -x /usr/bin/chromium ] || [ ! -d "$here/node_modules/playwright-core" ] || [ ! -d "$here/node_modules/axe-core" ] ||
  ! command -v node >/dev/null; then
  echo "1..0 # SKIP needs /usr/bin/chromium, node, playwright-core and axe-core (packaging/deps.sh; cd tests/browser && npm ci)"
  exit 0
fi
work=$(mktemp -d /tmp/quire-browser-XXXXXX)
chmod 711 "$work"
mkdir -p "$out"
# No document is approved automatically, so both invoices wait for review.
export QUIRE_GENERAL_DATA_DIR="$work/data" QUIRE_AUTH_PASSWORD_OPS=1 QUIRE_AUTH_PASSWORD_MEM_MB=8 QUIRE_FIELDS_AUTO_APPROVE=101
unset QUIRE_CONFIG QUIRE_DATABASE_URL
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  "$QUIRE" stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
"$QUIRE" init >"$work/log" 2>&1 || { echo "Bail out! quire init failed"; exit 1; }
QUIRE_PASSWORD=browser-admin-pw "$QUIRE" user add reviewer-admin --role admin >>"$work/log" 2>&1
"$MAKE_INVOICE" "$work/invoice-7.pdf" --number INV-BROWSER-7 >/dev/null
"$MAKE_INVOICE" "$work/invoice-8.pdf" --number INV-BROWSER-8 >/dev/null
QUIRE_WEB_LISTEN=127.0.0.1:0 "$QUIRE" serve >"$work/serve.out" 2>>"$work/log" &
pid=$!
. "$here/../e2e/tap.sh"
wait_for 'grep -q "serving on" "$work/serve.out" 2>/dev/null || ! kill -0 $pid 2>/dev/null'
base=http://127.0.0.1:$(sed -n 's/.*127.0.0.1:\([0-9]*\)\/.*/\1/p' "$work/serve.out")
node "$here/review.mjs" "$base" reviewer-admin browser-admin-pw "$work/invoice-7.pdf" "$work/invoice-8.pdf" "$out"
rc=$?
[ $rc = 0 ] || tail -20 "$work/log" | sed 's/^/# /'
exit $rc
