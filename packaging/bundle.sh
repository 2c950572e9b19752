#!/usr/bin/env bash
# Builds the air-gapped bundle: one tarball holding the quire .deb and every
# Debian package it needs (the whole dependency closure, so it installs on a
# minimal Debian 12 of the same architecture), as a local apt repository, with
# install.sh that installs from it alone, no network.
# Run on a Debian 12 machine with network (it downloads with apt-get).
# Usage: packaging/bundle.sh [--deb FILE] [OUTDIR]   (default OUTDIR: build-deb/)
# Prints the path of the tarball on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deb=
if [ "${1:-}" = --deb ]; then
  deb=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
  shift 2
fi
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
(cd "$dir/debs" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null | gzip -9 >Packages.gz)

cat >"$dir/install.sh" <<'EOF'
#!/bin/sh
# Installs quire from this bundle alone: the folder debs/ is used as the only
# apt source (no network is touched), and apt installs whatever of it this
# machine lacks. Run as root on Debian 12.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
mkdir -p "$state/lists/partial"
echo "deb [trusted=yes] file:$here/debs ./" >"$state/sources.list"
apt_opts="-o Dir::Etc::SourceList=$state/sources.list -o Dir::Etc::SourceParts=/nonexistent
  -o Dir::State::Lists=$state/lists -o APT::Get::List-Cleanup=false"
# shellcheck disable=SC2086
apt-get $apt_opts update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y --no-install-recommends quire tesseract-ocr-eng
echo "install.sh: quire is installed; check it with: sudo -u quire quire doctor"
EOF
chmod +x "$dir/install.sh"
cp "$root/README.md" "$dir/README.md"
tar -C "$work" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz"
