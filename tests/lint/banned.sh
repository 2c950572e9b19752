#!/usr/bin/env bash
# Fails when a banned unsafe function is called anywhere in the code folders:
# strcpy, strcat, sprintf, vsprintf, atoi, atol, strtok, gets. Prints TAP.
set -u
root=${1:?source root}
cd "$root" || exit 1
echo "1..1"
hits=$(grep -nE '(^|[^A-Za-z0-9_])(strcpy|strcat|sprintf|vsprintf|atoi|atol|strtok|gets)[[:space:]]*\(' \
  --include='*.c' --include='*.h' -r core runtime extractors pipeline web appliance tests 2>/dev/null |
  grep -vE '^tests/lint/' || true)
if [ -n "$hits" ]; then
  echo "$hits" | sed 's/^/# /'
  echo "not ok 1 - /lint/banned-functions"
  exit 1
fi
echo "ok 1 - /lint/banned-functions"
