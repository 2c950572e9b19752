#!/usr/bin/env bash
# Scaling of the workers against one database (a benchmark, not a test: it prints figures).
#
# One PostgreSQL on 127.0.0.1 (TCP, as remote hosts reach it). For W = 1, 2, 4, 8 worker
# processes, each with a data directory of its own (as separate hosts have), DOCS one-page
# invoices are queued first, then the W workers start and work them with the rules extractor
# (no model). The rate is documents over the span from the first claim to the last
# completion, from the jobs' own timestamps, so process start-up does not count. Each row
# gives the speed-up over one worker and the efficiency (speed-up / W). Then bench_queue
# (no-op jobs: claim + complete per second, 4 clients) gives the queue's own ceiling, in the
# same run on the same machine. The CPU time the workers and the PostgreSQL server spent per
# document gives the sizing: how many worker cores one database core keeps up with. The
# processor and the load average are printed.
# Usage: scale.sh QUIRE MAKE_INVOICE BENCH_QUEUE [DOCS] [WORKER COUNTS...]
set -u
QUIRE=${1:?quire binary}
MAKE_INVOICE=${2:?make-invoice binary}
BENCH_QUEUE=${3:?bench_queue binary}
DOCS=${4:-200}
shift $(($# < 4 ? $# : 4))
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(1 2 4 8)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../e2e/pgcluster.sh"
work=$(mktemp -d /tmp/quire-scale-XXXXXX)
chmod 711 "$work"
unset QUIRE_CONFIG QUIRE_DATABASE_URL
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  pg_down "$work/db" fast
  rm -rf "$work"
}
trap cleanup EXIT

port=$(free_port)
pg_new "$work/db" "$port" && pg_up "$work/db" && PGDB=postgres psql_at "$port" -c "CREATE DATABASE quire" >/dev/null ||
  { echo "scale: cannot start PostgreSQL"; exit 1; }
export QUIRE_DATABASE_URL="host=127.0.0.1 port=$port dbname=quire user=quire" QUIRE_WORKER_POLL_MS=200
QUIRE_GENERAL_DATA_DIR="$work/h0" "$QUIRE" init >"$work/log" 2>&1 || { echo "scale: quire init failed"; exit 1; }

hz=$(getconf CLK_TCK)
pm=$(head -1 "$work/db/postmaster.pid")
# CPU time in ms of the PostgreSQL server: the postmaster with its reaped children (backends
# that ended) and the live children.
pg_cpu() {
  cat /proc/[0-9]*/stat 2>/dev/null |
    awk -v pm="$pm" -v hz="$hz" '{ if ($1 == pm) t += $14 + $15 + $16 + $17; else if ($4 == pm) t += $14 + $15 }
      END { printf "%d", t * 1000 / hz }'
}
# CPU time in ms of processes $@ with their reaped children (the parse sandboxes).
procs_cpu() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo $((t * 1000 / hz))
}
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "processor: ${cpu:-unknown}, $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "PostgreSQL $("$pg_bindir/postgres" --version | sed 's/^[^0-9]*\([0-9.]*\).*/\1/') on 127.0.0.1:$port; $DOCS one-page invoices per run, rules extractor"
printf '%-8s %-10s %-9s %-11s %-16s %-16s %s\n' workers docs/min speed-up efficiency "worker CPU/doc" \
  "server CPU/doc" "load avg after"
base=
for w in "${COUNTS[@]}"; do
  mkdir -p "$work/pdf-$w"
  for i in $(seq 1 "$DOCS"); do "$MAKE_INVOICE" "$work/pdf-$w/inv-$i.pdf" --number "SCALE-$w-$i" >/dev/null || exit 1; done
  first=$(psql_at "$port" -c "SELECT coalesce(max(id), 0) FROM documents")
  QUIRE_GENERAL_DATA_DIR="$work/h0" "$QUIRE" submit "$work/pdf-$w"/*.pdf >/dev/null 2>>"$work/log" ||
    { echo "scale: submit failed"; exit 1; }
  pids=()
  pg0=$(pg_cpu)
  for k in $(seq 1 "$w"); do
    h="$work/h$k"
    if [ ! -d "$h" ]; then
      mkdir -p "$h/keys" && chmod 700 "$h" "$h/keys" && cp "$work/h0/keys/kek.key" "$h/keys/" && chmod 600 "$h/keys/kek.key"
    fi
    QUIRE_GENERAL_DATA_DIR="$h" "$QUIRE" worker >>"$work/worker-$k.log" 2>&1 &
    pids+=($!)
  done
  sql="SELECT count(*) FROM documents WHERE id > $first AND state IN ('processed', 'failed')"
  wait_for 3600 "[ \"\$(psql_at $port -c \"$sql\")\" -ge $DOCS ]" || { echo "scale: run with $w workers did not finish"; exit 1; }
  wcpu=$(procs_cpu "${pids[@]}")
  pgcpu=$(($(pg_cpu) - pg0))
  for p in "${pids[@]}"; do kill -TERM "$p"; done
  wait "${pids[@]}" 2>/dev/null
  pids=()
  rate=$(psql_at "$port" -c "SELECT round(count(*) * 60 / extract(epoch FROM max(j.finished_at) - min(j.started_at)))
    FROM jobs j WHERE j.document_id > $first AND j.state = 'done'")
  [ -n "$base" ] || base=$rate
  awk -v w="$w" -v r="$rate" -v b="$base" -v l="$(cut -d' ' -f1 /proc/loadavg)" -v wc="$wcpu" -v pc="$pgcpu" -v n="$DOCS" \
    'BEGIN { printf "%-8s %-10s %-9.2f %-11.2f %-16s %-16s %s\n", w, r, r / b, r / b / w, sprintf("%.0f ms", wc / n),
             sprintf("%.0f ms", pc / n), l }'
done
echo "worker CPU/doc: the worker processes and their parse sandboxes; server CPU/doc: PostgreSQL's"
echo "processes (backends, WAL writer, checkpointer, autovacuum) over the same span."
echo
echo "the queue's own ceiling (no-op jobs, claim + complete, bench_queue 5000 4):"
"$BENCH_QUEUE" 5000 4 | sed 's/^/  /'
