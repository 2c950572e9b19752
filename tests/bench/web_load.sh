#!/usr/bin/env bash
# Load run of the web server with wrk (a benchmark, not a test: it prints figures).
#
# A fresh instance with one processed document; `quire web` on a free port. Each
# endpoint gets DURATION seconds under CONNS concurrent connections (default 200);
# /healthz (no database, no authentication) is the reference the others are
# compared with, measured in the same run. The daemon's resident memory is sampled
# before, during (peak) and after. Then a second daemon with web.max_connections
# below the load shows refusal: wrk's socket errors, and /healthz still answering.
# Usage: web_load.sh QUIRE MAKE_INVOICE [DURATION] [CONNS]
set -u
QUIRE=${1:?quire binary}
MAKE_INVOICE=${2:?make-invoice binary}
DURATION=${3:-10}
CONNS=${4:-200}
command -v wrk >/dev/null || { echo "web_load: wrk is not installed (packaging/deps.sh)"; exit 1; }
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

"$QUIRE" init >"$work/log" 2>&1 || { echo "web_load: quire init failed"; exit 1; }
token=$("$QUIRE" token create load --role admin 2>>"$work/log" | grep -o 'qt_[A-Za-z0-9_-]*')
"$MAKE_INVOICE" "$work/inv.pdf" --number INV-LOAD-1 >/dev/null
"$QUIRE" submit "$work/inv.pdf" >>"$work/log" 2>&1
"$QUIRE" worker --drain >>"$work/log" 2>&1
"$QUIRE" start >>"$work/log" 2>&1 # keep the embedded server up between daemons

start() { # VAR=value...: starts `quire web`, sets $pid and $B
  env QUIRE_WEB_LISTEN=127.0.0.1:0 "$@" "$QUIRE" web >"$work/web.out" 2>>"$work/log" &
  pid=$!
  for _ in $(seq 100); do grep -q "serving on" "$work/web.out" 2>/dev/null && break; sleep 0.1; done
  B=http://127.0.0.1:$(sed -n 's/.*127.0.0.1:\([0-9]*\)\/.*/\1/p' "$work/web.out")
}
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0; }

run() { # path [wrk args...]: prints requests/s; leaves wrk's output in $work/wrk.txt
  local path=$1; shift
  local peak=0 r
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$@" "$B$path" >"$work/wrk.txt" 2>&1 &
  local w=$!
  while kill -0 "$w" 2>/dev/null; do r=$(rss_kb); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.2; done
  wait "$w"
  echo "$peak" >"$work/peak"
  awk '/Requests\/sec/ {print $2}' "$work/wrk.txt"
}

# wrk comes from one address: the per-address limit (default 64) must admit every connection here.
start QUIRE_WEB_MAX_CONNECTIONS=$((CONNS + 16)) QUIRE_WEB_MAX_PER_ADDRESS=$((CONNS + 16))
rss0=$(rss_kb)
echo "quire web: $CONNS connections, ${DURATION}s per endpoint, 2 wrk threads, $(nproc) cores"
ref=$(run /healthz)
printf '%-34s %10.0f req/s (reference)  p99 %s  peak RSS %d MiB\n' "GET /healthz" "$ref" \
  "$(awk '/ 99%/ {print $2}' "$work/wrk.txt")" $(( $(cat "$work/peak") / 1024 ))
for path in /api/v1/stats /api/v1/documents/1 /api/v1/documents/1/result; do
  rps=$(run "$path" -H "Authorization: Bearer $token")
  non2xx=$(awk '/Non-2xx/ {print $4}' "$work/wrk.txt")
  printf '%-34s %10.0f req/s  ratio %.3f  p99 %s  peak RSS %d MiB%s\n' "GET $path" "$rps" \
    "$(echo "$rps / $ref" | bc -l)" "$(awk '/ 99%/ {print $2}' "$work/wrk.txt")" \
    $(( $(cat "$work/peak") / 1024 )) "${non2xx:+  non-2xx $non2xx}$(grep -E "Socket errors" "$work/wrk.txt" | sed 's/^ */  /')"
done
rss1=$(rss_kb)
echo "RSS before $((rss0 / 1024)) MiB, after $((rss1 / 1024)) MiB"
stop

limit=$((CONNS / 4))
start QUIRE_WEB_MAX_CONNECTIONS=$((CONNS * 2)) QUIRE_WEB_MAX_PER_ADDRESS=$limit
# CONNS idle connections from one address: those over the per-address limit are closed at once.
# (Over web.max_connections in all, new connections wait in the listen backlog instead.)
refused=$(python3 - "${B##*:}" "$CONNS" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
time.sleep(0.5)
closed = 0
for s in socks:
    s.settimeout(0.05)
    try:
        closed += s.recv(1) == b""
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed += 1
print(closed)
PY
)
code=$(curl -s -o /dev/null -w '%{http_code}' "$B/healthz")
echo "web.max_per_address=$limit, $CONNS connections opened: $refused closed by the server at once;" \
  "/healthz afterwards: $code; RSS $(( $(rss_kb) / 1024 )) MiB"
stop
