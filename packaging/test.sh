#!/usr/bin/env bash
# Runs every test suite: a normal build (unit, integration, e2e, fuzz) and an
# AddressSanitizer + UndefinedBehaviorSanitizer build (unit, integration, fuzz).
# Ends with one line "N passed, N failed" counted from meson's test logs.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
packaging/deps.sh || exit 1
export MESON_TESTTHREADS=${MESON_TESTTHREADS:-2}
# The tests' time limits only stop a hang; a loaded machine may take several times longer.
mult=${QUIRE_TIMEOUT_MULTIPLIER:-4}

setup() { # dir, extra args...
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}

status=0
# playwright-core and axe-core for the browser test, pinned by tests/browser/package-lock.json.
[ -d tests/browser/node_modules/playwright-core ] && [ -d tests/browser/node_modules/axe-core ] ||
  (cd tests/browser && npm ci --no-audit --no-fund >/dev/null) || exit 1
setup build-test -Dwerror=true --buildtype=debugoptimized || exit 1
ninja -C build-test || exit 1
meson test -C build-test --print-errorlogs --no-rebuild --timeout-multiplier "$mult" \
  --suite unit --suite integration --suite e2e --suite fuzz || status=1

setup build-sanitize -Dwerror=true --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false || exit 1
ninja -C build-sanitize || exit 1
meson test -C build-sanitize --print-errorlogs --no-rebuild --timeout-multiplier "$mult" \
  --suite unit --suite integration --suite fuzz || status=1

python3 - build-test/meson-logs/testlog.json build-sanitize/meson-logs/testlog.json <<'PY' || status=1
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        print(f"no test log: {path}")
        failed += 1
        continue
    build = path.split("/")[0]
    for line in lines:
        t = json.loads(line)
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            print(f"{r}: {build} {t.get('name')} ({t.get('duration', 0):.0f} s)")
            # the failing checks again, here at the end where they are seen
            out = (t.get("stdout") or "").splitlines()
            bad = [l for l in out if l.startswith(("not ok", "Bail out", "# FAIL", "ERROR"))]
            for l in (bad or out[-10:])[:20]:
                print(f"    {l[:300]}")
            failed += 1
if skipped:
    print(f"{skipped} skipped (see the test logs for why)")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
PY
exit $status
