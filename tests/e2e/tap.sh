# tap.sh: the TAP helpers that every e2e script sources. check NAME 'CONDITION'
# evaluates the shell condition and prints "ok" or "not ok" with the next
# number; $failed counts the failures; each script prints its own plan.
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
# wait_for 'CONDITION' [SECONDS]: evaluates the condition every 0.2 s until it holds (status 0)
# or SECONDS have passed (status 1). The bound ($QUIRE_TEST_WAIT_S, default 300) only stops a
# hang: a loaded machine may take minutes for what takes a second alone, so tests wait for
# conditions, never for a fixed time.
wait_for() {
  local end=$((SECONDS + ${2:-${QUIRE_TEST_WAIT_S:-300}}))
  until eval "$1"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.2
  done
}
