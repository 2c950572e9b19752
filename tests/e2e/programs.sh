#!/usr/bin/env bash
# End-to-end: the two quire programs. quire runs extract and config itself and
# links no database, web server, TLS or HTTP client library; every other command
# runs in quire-full beside it, with the same arguments; without quire-full it
# says what is missing. Prints TAP. Usage: programs.sh QUIRE MAKE_INVOICE
set -u
QUIRE=$1
MAKE_INVOICE=$2
. "$(dirname "$0")/tap.sh"

work=$(mktemp -d /tmp/quire-e2e-XXXXXX)
export QUIRE_GENERAL_DATA_DIR="$work/data"
unset QUIRE_CONFIG QUIRE_DATABASE_URL
trap 'rm -rf "$work"' EXIT
full="$(dirname "$QUIRE")/quire-full"
heavy='libpq\.so|libmicrohttpd\.so|libgnutls\.so|libcurl\.so'

echo "1..7"
check "/programs/front-links-light" '! ldd "$QUIRE" | grep -Eq "$heavy"'
check "/programs/full-links-all" 'ldd "$full" | grep -q "libpq\.so" && ldd "$full" | grep -q "libmicrohttpd\.so"'
"$MAKE_INVOICE" "$work/invoice.pdf" --number INV-PROG-7 >/dev/null
check "/programs/extract-in-front" '"$QUIRE" extract --text "$work/invoice.pdf" | grep -q "INV-PROG-7"'
check "/programs/extract-fields" '"$QUIRE" extract "$work/invoice.pdf" | grep -q "\"INV-PROG-7\""'
# a command of quire-full: its own usage, under its own name
check "/programs/handed-over" '"$QUIRE" status --help | grep -q "quire status"'
check "/programs/global-options-kept" '"$QUIRE" --config /dev/null retry --help | grep -q "quire retry"'
mkdir "$work/alone"
cp "$QUIRE" "$work/alone/quire"
out=$("$work/alone/quire" status 2>&1)
rc=$?
if [ "$rc" -eq 1 ] && echo "$out" | grep -q "cannot run /.*/quire-full"; then
  ok "/programs/full-missing"
elif ls /usr/libexec/quire/quire-full /usr/local/libexec/quire/quire-full >/dev/null 2>&1; then
  skip "/programs/full-missing" "an installed quire-full ran"
else
  not_ok "/programs/full-missing"
fi
[ "$failed" -eq 0 ]
