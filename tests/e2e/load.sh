#!/usr/bin/env bash
# A short load check of `quire web` (tests/bench/web_load.sh is the longer
# benchmark): wrk with CONNS connections for DURATION seconds against /healthz
# and an authenticated API route, printing requests/s; the daemon must keep
# answering (successful responses under load, /healthz 200 afterwards) with its
# peak resident memory (VmHWM) under 256 MiB. Then connections past the limits
# must not pile up in the daemon: with web.max_connections below the number of
# idle connections opened, the daemon holds at most that many (the rest wait in
# the kernel's listen backlog, unaccepted), and past web.max_per_address they
# are closed at once. No figure is compared with a time limit: the rate is
# printed, only a zero rate fails. Prints TAP. Usage: load.sh QUIRE
set -u
QUIRE=$1
DURATION=${QUIRE_LOAD_DURATION:-5}
CONNS=200
HWM_LIMIT_KB=$((256 << 10))
. "$(dirname "$0")/tap.sh"

TESTS="load-healthz load-api still-answering memory-bounded max-connections max-per-address"
echo "1..6"
if ! command -v wrk >/dev/null; then
  for t in $TESTS; do skip "/load/$t" "wrk is not installed (packaging/deps.sh installs it)"; done
  exit 0
fi

work=$(mktemp -d /tmp/quire-load-XXXXXX)
chmod 711 "$work"
export QUIRE_GENERAL_DATA_DIR="$work/data"
unset QUIRE_CONFIG QUIRE_DATABASE_URL
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  "$QUIRE" stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

"$QUIRE" init >"$work/log" 2>&1 || { cat "$work/log" >&2; echo "Bail out! quire init failed"; exit 1; }
token=$("$QUIRE" token create load --role admin 2>>"$work/log" | grep -o 'qt_[A-Za-z0-9_-]*')
"$QUIRE" start >>"$work/log" 2>&1 # the embedded PostgreSQL stays up between the daemons

start() { # VAR=value...: starts `quire web` on a free port; sets $pid and $B
  # emptied here, not by the background job's own redirection, which may come after the wait
  # below has read the previous daemon's address
  : >"$work/web.out"
  env QUIRE_WEB_LISTEN=127.0.0.1:0 "$@" "$QUIRE" web >"$work/web.out" 2>>"$work/log" &
  pid=$!
  wait_for 'grep -q "serving on" "$work/web.out" 2>/dev/null'
  B=http://127.0.0.1:$(sed -n 's/.*127.0.0.1:\([0-9]*\)\/.*/\1/p' "$work/web.out")
}
stop() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=; }
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
sockets() { find "/proc/$pid/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
# wrk's summary: requests/s, all responses, non-2xx responses.
load() { # NAME PATH [wrk args...]
  local name=$1 path=$2
  shift 2
  wrk -t2 -c"$CONNS" -d"${DURATION}s" "$@" "$B$path" >"$work/$name.txt" 2>&1
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$name.txt")
  total=$(awk '/requests in/ {print $1}' "$work/$name.txt")
  bad=$(awk '/Non-2xx/ {print $NF}' "$work/$name.txt")
  echo "# GET $path: ${rps:-0} requests/s with $CONNS connections over ${DURATION}s (${total:-0} responses," \
    "${bad:-0} non-2xx)$(grep 'Socket errors' "$work/$name.txt" | sed 's/^ */; /')"
  good=$((${total:-0} - ${bad:-0}))
}

# wrk connects from one address: both limits admit every connection of the run.
start QUIRE_WEB_MAX_CONNECTIONS=$((CONNS + 16)) QUIRE_WEB_MAX_PER_ADDRESS=$((CONNS + 16))
load healthz /healthz
check "/load/healthz" '[ "$good" -gt 0 ] || { sed "s/^/# /" "$work/healthz.txt" >&2; false; }'
load api /api/v1/stats -H "Authorization: Bearer $token"
check "/load/api" '[ "$good" -gt 0 ] && [ "$(code -H "Authorization: Bearer $token" "$B/api/v1/stats")" = 200 ] ||
  { sed "s/^/# /" "$work/api.txt" >&2; false; }'
check "/load/still-answering" 'kill -0 "$pid" && [ "$(code "$B/healthz")" = 200 ]'
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null)
echo "# quire web peak resident memory (VmHWM): $(( ${hwm:-0} / 1024 )) MiB"
check "/load/memory-bounded" '[ -n "$hwm" ] && [ "$hwm" -lt "$HWM_LIMIT_KB" ]'
stop

# COUNT idle connections from one address, held open until the daemon is done with them; prints how
# many connected, how many the daemon closed at once (EOF or reset), and how
# many sockets the daemon has open while they are held.
hold() { # COUNT
  python3 - "${B##*:}" "$1" "$pid" <<'PY'
import os, socket, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        socks.append(s)
    except OSError:
        s.close()
def state():
    closed = 0
    for s in socks:
        s.settimeout(0.01)
        try:
            closed += s.recv(1) == b""
        except socket.timeout:
            pass
        except OSError:
            closed += 1
    fds = "/proc/%s/fd" % pid
    held = sum(1 for f in os.listdir(fds) if os.readlink(os.path.join(fds, f)).startswith("socket:"))
    return closed, held
# The daemon accepts (and refuses) at its own pace, slower on a loaded machine: wait until what
# it holds and has closed stays the same for a second (at most a minute), not for a fixed time.
last, same, deadline = None, 0, time.monotonic() + 60
while same < 5 and time.monotonic() < deadline:
    time.sleep(0.2)
    now = state()
    same = same + 1 if now == last else 0
    last = now
closed, held = last
print(len(socks), closed, held)
for s in socks:
    s.close()
PY
}

limit=32
start QUIRE_WEB_MAX_CONNECTIONS=$limit QUIRE_WEB_MAX_PER_ADDRESS=$((CONNS * 2))
code "$B/healthz" >/dev/null
base=$(sockets)
read -r opened closed held < <(hold 120)
held=$((${held:-0} - base))
echo "# web.max_connections=$limit: 120 idle connections opened (${opened:-0} connected), the daemon holds $held," \
  "${closed:-0} closed by it at once; the others wait unaccepted"
after=
wait_for 'after=$(code "$B/healthz"); [ "$after" = 200 ]'
check "/load/max-connections" '[ "${opened:-0}" -gt "$limit" ] && [ "$held" -gt 0 ] && [ "$held" -le "$limit" ] &&
  [ "${closed:-0}" -eq 0 ] && [ "$after" = 200 ]'
stop

per=20
start QUIRE_WEB_MAX_CONNECTIONS=$((CONNS * 2)) QUIRE_WEB_MAX_PER_ADDRESS=$per
read -r opened closed held < <(hold 60)
echo "# web.max_per_address=$per: 60 idle connections opened, ${closed:-0} closed by the daemon at once"
check "/load/max-per-address" '[ "${closed:-0}" -ge $((60 - per)) ] && [ "$(code "$B/healthz")" = 200 ]'
stop
[ "$failed" -eq 0 ]
