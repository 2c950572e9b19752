#!/usr/bin/env bash
# Builds the Debian package quire_<version>_<arch>.deb with dpkg-buildpackage
# from a copy of the source tree (the files git knows, as they are in the work
# tree) with packaging/debian as its debian/ folder. Only the quire binary is
# compiled. Usage: packaging/build-deb.sh [OUTDIR]   (default: build-deb/)
# Prints the path of the .deb on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
for tool in dpkg-buildpackage dh; do
  command -v "$tool" >/dev/null || { echo "build-deb.sh: $tool missing: run packaging/deps.sh" >&2; exit 1; }
done

work=$(mktemp -d /tmp/quire-deb-XXXXXX)
trap 'rm -rf "$work"' EXIT
src="$work/quire"
mkdir -p "$src"
# Tracked and not-ignored files only: no build folders, no local data.
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
  grep -zv '^packaging/debian/' | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf -) | tar -xf - -C "$src"
cp -r "$root/packaging/debian" "$src/debian"
(cd "$src" && dpkg-buildpackage -b -us -uc -j"${JOBS:-2}" >"$work/build.log" 2>&1) || {
  tail -40 "$work/build.log" >&2
  echo "build-deb.sh: dpkg-buildpackage failed" >&2
  exit 1
}
deb=$(ls "$work"/quire_*.deb)
cp "$deb" "$out/"
echo "$out/$(basename "$deb")"
