# tap.sh: the TAP helpers that every e2e script sources. check NAME 'CONDITION'
# evaluates the shell condition and prints "ok" or "not ok" with the next
# number; $failed counts the failures; each script prints its own plan.
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
