# pgcluster.sh: PostgreSQL clusters of the many-host tests, sourced by them. Each listens on
# 127.0.0.1 only, on a free port, with its socket in its own directory; as root the server
# runs as the postgres account. Functions return non-zero on failure.
pg_bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# A TCP port nobody listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# pg_new DIR PORT: a new cluster in DIR (superuser quire, trust on loopback only).
pg_new() {
  local dir=$1 port=$2
  mkdir -p "$dir" && chmod 700 "$dir" || return 1
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir" || return 1; fi
  as_pg "$pg_bindir/initdb" -D "$dir" -U quire --auth-local=trust --auth-host=trust -E UTF8 --no-locale \
    --no-instructions >"$dir.initdb.log" 2>&1 || return 1
  pg_conf "$dir" "listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
unix_socket_permissions = 0700
log_min_messages = warning"
}

# pg_conf DIR TEXT: appends TEXT to the cluster's postgresql.conf.
pg_conf() { printf '\n%s\n' "$2" | as_pg tee -a "$1/postgresql.conf" >/dev/null; }

pg_up() { as_pg "$pg_bindir/pg_ctl" -D "$1" -l "$1/server.log" -w -t 120 start >/dev/null; }
# pg_down DIR [MODE]: fast by default; immediate is a crash.
pg_down() { as_pg "$pg_bindir/pg_ctl" -D "$1" -m "${2:-fast}" -w -t 120 stop >/dev/null 2>&1; }
pg_stopped() { ! as_pg "$pg_bindir/pg_ctl" -D "$1" status >/dev/null 2>&1; }

# psql_at PORT [DB] ARGS...: one value per line, nothing else.
psql_at() {
  local port=$1; shift
  "$pg_bindir/psql" "host=127.0.0.1 port=$port user=quire dbname=${PGDB:-quire} connect_timeout=5" -AtqX "$@"
}

# wait_for TIMEOUT_S CONDITION: evaluates CONDITION until it holds; false at the timeout.
wait_for() {
  local end=$(($(date +%s) + $1))
  until eval "$2"; do
    [ "$(date +%s)" -ge "$end" ] && return 1
    sleep 0.2
  done
}
