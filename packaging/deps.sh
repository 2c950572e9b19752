#!/usr/bin/env bash
# Installs every Debian package Quire needs to build, run and test, if missing.
# Uses sudo when not run as root.
set -euo pipefail
packages=(
  build-essential meson ninja-build pkg-config git
  libglib2.0-dev libglib2.0-dev-bin libpq-dev postgresql
  libpoppler-glib-dev poppler-utils libcairo2-dev fonts-dejavu-core
  libmicrohttpd-dev libgnutls28-dev libsodium-dev libcjson-dev libcurl4-openssl-dev
  libtesseract-dev tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-fra libxml2-dev python3 curl
  chromium wrk
  dpkg-dev debhelper systemd adduser
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The browser test drives Chromium through playwright-core from npm; a Node.js from
# elsewhere (with its own npm) is kept as it is.
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: run as root (or install sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "deps.sh: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
