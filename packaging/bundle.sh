#!/usr/bin/env bash
# Builds the air-gapped bundle: one tarball holding the quire .deb and every
# Debian package it needs (the whole dependency closure, so it installs on a
# minimal Debian 12 of the same architecture), as a local apt repository, with
# install.sh that installs from it alone, no network.
# Run on a Debian 12 machine with network (it downloads with apt-get), or give
# the dependency packages with --debs-from DIR (every .deb in DIR is taken,
# nothing is downloaded). Either way the bundle is refused unless apt, given
# the bundle as its only source and a machine with nothing installed, can
# resolve quire and the OCR data from it alone.
# Usage: packaging/bundle.sh [--deb FILE] [--debs-from DIR] [OUTDIR]   (default OUTDIR: build-deb/)
# Prints the path of the tarball on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deb=
from=
while [ $# -gt 0 ]; do
  case $1 in
  --deb | --debs-from) [ $# -ge 2 ] || { echo "bundle.sh: $1 needs a path" >&2; exit 2; } ;;&
  --deb) deb=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
  --debs-from) from=$(cd "$2" && pwd); shift 2 ;;
  --*) echo "bundle.sh: unknown option $1" >&2; exit 2 ;;
  *) break ;;
  esac
done
out=${1:-$root/build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
command -v dpkg-scanpackages >/dev/null || { echo "bundle.sh: dpkg-scanpackages missing: run packaging/deps.sh" >&2; exit 1; }
[ -n "$deb" ] || deb=$("$root/packaging/build-deb.sh" "$out" | tail -1)

version=$(dpkg-deb -f "$deb" Version)
arch=$(dpkg-deb -f "$deb" Architecture)
name="quire-bundle-$version-$arch"
work=$(mktemp -d /tmp/quire-bundle-XXXXXX)
trap 'rm -rf "$work"' EXIT
dir="$work/$name"
mkdir -p "$dir/debs"
cp "$deb" "$dir/debs/"

if [ -n "$from" ]; then
  n=$(find "$from" -maxdepth 1 -name '*.deb' ! -name 'quire_*' | wc -l)
  [ "$n" -gt 0 ] || { echo "bundle.sh: no .deb in $from" >&2; exit 1; }
  echo "bundle.sh: taking $n packages from $from" >&2
  find "$from" -maxdepth 1 -name '*.deb' ! -name 'quire_*' -exec cp {} "$dir/debs/" \;
else
  # What quire needs: its Depends, and the Recommends a server wants (OCR language data).
  wanted=$( (dpkg-deb -f "$deb" Depends; echo ","; dpkg-deb -f "$deb" Recommends) |
    tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/[[:space:]]//g' | grep -v '^$' | sort -u)
  # The closure, without choices between alternatives left to chance: apt-cache
  # lists every package that can satisfy a dependency; virtual names (<...>) are dropped.
  closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $wanted 2>/dev/null | grep -v '^ ' | grep -v '^<' | sort -u)
  # Only packages that exist as real candidates (a name may be provided, not packaged).
  download=()
  for p in $closure; do
    cand=$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^  Candidate: //p')
    [ -n "$cand" ] && [ "$cand" != "(none)" ] && download+=("$p")
  done
  echo "bundle.sh: downloading ${#download[@]} packages" >&2
  (cd "$dir/debs" && apt-get -o APT::Sandbox::User=root download -q "${download[@]}" >/dev/null)
fi
(cd "$dir/debs" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null | gzip -9 >Packages.gz)

cat >"$dir/install.sh" <<'EOF'
#!/bin/sh
# Installs quire from this bundle alone: the folder debs/ is used as the only
# apt source (no network is touched), and apt installs whatever of it this
# machine lacks. Run as root on Debian 12.
#   --dry-run        only show what apt would install on this machine (apt-get
#                    --simulate; nothing is changed, root not needed)
#   --check-complete show that the bundle alone suffices on a machine with
#                    nothing installed (simulated against an empty package list)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-install}
case $mode in
install | --dry-run | --check-complete) ;;
*) echo "usage: install.sh [--dry-run | --check-complete]" >&2; exit 2 ;;
esac
[ "$mode" != install ] || [ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
echo "deb [trusted=yes] file:$here/debs ./" >"$state/sources.list"
apt_opts="-o Dir::Etc::SourceList=$state/sources.list -o Dir::Etc::SourceParts=/nonexistent
  -o Dir::State::Lists=$state/lists -o APT::Get::List-Cleanup=false"
sim=
if [ "$mode" != install ]; then
  # A package cache of its own, so that the machine's apt state is not touched.
  apt_opts="$apt_opts -o Dir::Cache=$state/cache -o Debug::NoLocking=1"
  sim=--simulate
fi
if [ "$mode" = --check-complete ]; then
  : >"$state/status"
  apt_opts="$apt_opts -o Dir::State::status=$state/status"
fi
# shellcheck disable=SC2086
apt-get $apt_opts update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y --no-install-recommends $sim quire tesseract-ocr-eng
[ "$mode" != install ] || echo "install.sh: quire is installed; check it with: sudo -u quire quire doctor"
EOF
chmod +x "$dir/install.sh"
cp "$root/README.md" "$dir/README.md"
# A bundle missing a package would fail on the air-gapped machine: refuse it here.
"$dir/install.sh" --check-complete >"$work/check.log" 2>&1 || {
  sed 's/^/bundle.sh: /' "$work/check.log" >&2
  echo "bundle.sh: the bundle does not hold every package quire needs" >&2
  exit 1
}
tar -C "$work" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz"
