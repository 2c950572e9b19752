#!/usr/bin/env bash
# Quick start: installs dependencies, builds quire, creates its data directory
# with a private PostgreSQL, processes the bundled sample invoices end to end
# and prints their extracted fields, then runs the server (web + worker) and
# prints its address; Ctrl-C stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
packaging/deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release >/dev/null
fi
ninja -C build >/dev/null
quire=build/appliance/quire
samples=build/samples
mkdir -p "$samples"
build/tests/fixtures/make-invoice "$samples/invoice-northwind.pdf" --number INV-2026-0042
build/tests/fixtures/make-invoice "$samples/invoice-two-pages.pdf" --number INV-2026-0043 --pages 2
"$quire" init
out=$("$quire" submit "$samples"/*.pdf)
echo "$out"
"$quire" worker --drain
for doc in $(echo "$out" | sed -n 's/.*document \([0-9]*\),.*/\1/p'); do
  echo "== document $doc"
  "$quire" show "$doc"
done
"$quire" status
echo
echo "quire is built at $root/$quire; data in $("$quire" config show | sed -n 's/^general.data_dir = //p')"
exec "$quire" serve
