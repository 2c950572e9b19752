#!/usr/bin/env bash
# End-to-end: several hosts, one PostgreSQL, over TCP with TLS.
# The server runs with a certificate of a CA made here (openssl) and asks TLS clients for a
# certificate of that CA. Quire connects with sslmode=verify-full, the CA file and a client
# certificate; a wrong CA, a wrong host name and a missing client certificate are refused
# with the reason, and `quire doctor` says how the database is reached (verified, unverified,
# without TLS). Then two "hosts" (separate processes with separate data directories, only the
# database and the key-encryption key in common) work one queue: a worker on each, documents
# submitted from each, a key rotation on one host seen by the running workers of both; and
# two `quire web` servers share sessions and login throttling through the database.
# Prints TAP. Usage: hosts.sh QUIRE MAKE_INVOICE
set -u
QUIRE=$1
MAKE_INVOICE=$2
here=$(dirname "$0")
. "$here/tap.sh"
. "$here/pgcluster.sh"

work=$(mktemp -d /tmp/quire-e2e-hosts-XXXXXX)
chmod 711 "$work"
unset QUIRE_CONFIG QUIRE_DATABASE_URL QUIRE_PASSPHRASE CREDENTIALS_DIRECTORY
export QUIRE_AUTH_PASSWORD_OPS=1 QUIRE_AUTH_PASSWORD_MEM_MB=8 QUIRE_WORKER_POLL_MS=500
log="$work/quire.log"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  pg_down "$work/db" immediate
  rm -rf "$work"
}
trap cleanup EXIT

echo "1..12"
# --- a CA, the server's certificate for db.test, a client certificate for user quire, a rogue CA
pki="$work/pki"
mkdir -p "$pki" && chmod 755 "$pki"
ossl() { openssl "$@" >>"$log" 2>&1; }
make_ca() { # name
  ossl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=$1" \
    -keyout "$pki/$1.key" -out "$pki/$1.pem"
}
make_cert() { # name subject san
  ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$2" -keyout "$pki/$1.key" \
    -out "$pki/$1.csr" &&
    printf 'subjectAltName = %s\n' "$3" >"$pki/$1.ext" &&
    ossl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
      -extfile "$pki/$1.ext" -out "$pki/$1.pem"
}
make_ca ca && make_ca rogue && make_cert server "/CN=db.test" "DNS:db.test" &&
  make_cert client "/CN=quire" "DNS:quire-client"
chmod 600 "$pki"/*.key

port=$(free_port)
pg_new "$work/db" "$port"
cp "$pki/server.pem" "$pki/server.key" "$pki/ca.pem" "$work/db/" && chmod 600 "$work/db/server.key"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$work/db/server.pem" "$work/db/server.key" "$work/db/ca.pem"; fi
pg_conf "$work/db" "ssl = on
ssl_cert_file = 'server.pem'
ssl_key_file = 'server.key'
ssl_ca_file = 'ca.pem'"
# TLS clients must show a certificate of the CA naming them; plain TCP stays open on loopback
# so that doctor's warning about it can be seen.
printf 'local all all trust\nhostssl all all 127.0.0.1/32 cert\nhost all all 127.0.0.1/32 trust\n' |
  as_pg tee "$work/db/pg_hba.conf" >/dev/null
pg_up "$work/db" && PGDB=postgres psql_at "$port" -c "CREATE DATABASE quire" >>"$log" 2>&1

base="host=db.test hostaddr=127.0.0.1 port=$port dbname=quire user=quire connect_timeout=10"
tls="$base sslmode=verify-full sslrootcert=$pki/ca.pem sslcert=$pki/client.pem sslkey=$pki/client.key"
hostA="$work/hostA" hostB="$work/hostB"
qa() { QUIRE_GENERAL_DATA_DIR="$hostA" QUIRE_DATABASE_URL="${URL:-$tls}" "$QUIRE" "$@"; }
qb() { QUIRE_GENERAL_DATA_DIR="$hostB" QUIRE_DATABASE_URL="${URL:-$tls}" "$QUIRE" "$@"; }

check "/e2e/hosts/tls/init-verify-full" 'qa init >>"$log" 2>&1'
qa doctor >"$work/doctor" 2>&1
check "/e2e/hosts/tls/doctor-verified" 'grep -Eq "database at db.test reached over TLSv1\.[23], server certificate and name verified \(sslmode=verify-full\), with a client certificate" "$work/doctor" &&
  grep -q "keyring in the database" "$work/doctor" && ! grep -q "reached without TLS" "$work/doctor"'
URL="$base sslmode=verify-full sslrootcert=$pki/rogue.pem sslcert=$pki/client.pem sslkey=$pki/client.key"
check "/e2e/hosts/tls/wrong-ca-refused" '! qa status >/dev/null 2>"$work/err" && grep -q "certificate verify failed" "$work/err"'
URL="host=other.test hostaddr=127.0.0.1 port=$port dbname=quire user=quire sslmode=verify-full sslrootcert=$pki/ca.pem sslcert=$pki/client.pem sslkey=$pki/client.key"
check "/e2e/hosts/tls/wrong-name-refused" '! qa status >/dev/null 2>"$work/err" && grep -q "does not match host name" "$work/err"'
URL="$base sslmode=verify-full sslrootcert=$pki/ca.pem sslcert=$work/none.pem sslkey=$work/none.key"
check "/e2e/hosts/tls/client-certificate-required" '! qa status >/dev/null 2>"$work/err" && grep -q "certificate" "$work/err"'
URL="$base sslmode=require sslcert=$pki/client.pem sslkey=$pki/client.key"
check "/e2e/hosts/tls/doctor-unverified-warns" 'qa doctor 2>&1 | grep -q "^warn  database at db.test reached over TLSv1\.[23] without checking its certificate (sslmode=require)"'
URL="$base sslmode=disable"
check "/e2e/hosts/tls/doctor-plain-warns" 'qa doctor 2>&1 | grep -q "^warn  database at db.test reached without TLS"'
unset URL

# --- two hosts, one queue: host B has only the key-encryption key and the database
mkdir -p "$hostB/keys" && chmod 700 "$hostB" "$hostB/keys" &&
  cp "$hostA/keys/kek.key" "$hostB/keys/kek.key" && chmod 600 "$hostB/keys/kek.key"
mkdir -p "$work/pdf"
for i in $(seq 1 60); do "$MAKE_INVOICE" "$work/pdf/inv-$i.pdf" --number "INV-HOST-$i" || break; done
# Started directly (not through qa/qb) so that $! is the worker process itself.
QUIRE_GENERAL_DATA_DIR="$hostA" QUIRE_DATABASE_URL="$tls" "$QUIRE" worker >"$work/workerA.log" 2>&1 &
wa=$!
QUIRE_GENERAL_DATA_DIR="$hostB" QUIRE_DATABASE_URL="$tls" "$QUIRE" worker >"$work/workerB.log" 2>&1 &
wb=$!
pids+=("$wa" "$wb")
qa submit "$work"/pdf/inv-{1..20}.pdf >>"$work/submitted" 2>>"$log"
qb submit "$work"/pdf/inv-{21..40}.pdf >>"$work/submitted" 2>>"$log"
processed() { psql_at "$port" -c "SELECT count(*) FROM documents WHERE state = 'processed'" 2>/dev/null || echo 0; }
wait_for 300 '[ "$(processed)" -ge 40 ]'
# Host A rotates; host B's submissions are then sealed under the new version, which the workers
# started before the rotation must open without a restart.
qa keys rotate >"$work/rotate" 2>>"$log"
newv=$(sed -n 's/^key version \([0-9]*\) is active.*/\1/p' "$work/rotate")
qb submit "$work"/pdf/inv-{41..60}.pdf >>"$work/submitted" 2>>"$log"
check "/e2e/hosts/queue/rotation-on-A" '[ -n "$newv" ] && [ "$newv" -ge 2 ] &&
  [ "$(psql_at "$port" -c "SELECT count(*) FROM documents WHERE key_version = $newv")" -eq 60 ]'
check "/e2e/hosts/queue/all-processed-once" 'wait_for 300 "[ \"\$(processed)\" -ge 60 ]" &&
  [ "$(psql_at "$port" -c "SELECT count(*) FROM documents d WHERE d.state = '"'"'processed'"'"' AND
     (SELECT count(*) FROM audit_log a WHERE a.action = '"'"'job.completed'"'"' AND a.object_id = d.id) = 1")" -eq 60 ] &&
  [ "$(psql_at "$port" -c "SELECT count(*) FROM jobs WHERE attempts <> 1 OR state <> '"'"'done'"'"'")" -eq 0 ]'
check "/e2e/hosts/queue/both-hosts-worked-after-rotation" 'kill -0 "$wa" && kill -0 "$wb" &&
  [ "$(psql_at "$port" -c "SELECT count(*) FROM (SELECT j.worker FROM jobs j ORDER BY j.document_id DESC LIMIT 20) l
     WHERE l.worker LIKE '"'"'%:$wa'"'"' OR l.worker LIKE '"'"'%:$wb'"'"'")" -eq 20 ] &&
  [ "$(psql_at "$port" -c "SELECT count(DISTINCT worker) FROM jobs")" -eq 2 ]'
kill -TERM "$wa" "$wb"
wait "$wa" "$wb" 2>/dev/null

# --- two web servers, one database: a session made on one is valid on the other, and failed
# logins counted on one slow down the next login on the other.
QUIRE_PASSWORD="pw-reviewer-0123456" qa user add rita --role reviewer >>"$log" 2>&1
QUIRE_PASSWORD="pw-reviewer-0123456" qa user add raul --role reviewer >>"$log" 2>&1
start_web() { # data-dir name -> sets W
  : >"$work/web-$2.out" # emptied before the wait below reads it, whatever the background job's pace
  QUIRE_GENERAL_DATA_DIR="$1" QUIRE_DATABASE_URL="$tls" QUIRE_WEB_LISTEN=127.0.0.1:0 "$QUIRE" web \
    >"$work/web-$2.out" 2>>"$log" &
  pids+=($!)
  wait_for 60 "grep -q 'serving on' '$work/web-$2.out'"
  W=http://127.0.0.1:$(sed -n 's/.*127.0.0.1:\([0-9]*\)\/.*/\1/p' "$work/web-$2.out")
}
start_web "$hostA" one
W1=$W
start_web "$hostB" two
W2=$W
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
login() { # base jar user password -> HTTP status
  local t
  t=$(curl -s -c "$2" -b "$2" "$1/login" | sed -n 's/.*name="login_token" value="\([^"]*\)".*/\1/p')
  curl -s -o /dev/null -w '%{http_code}' -c "$2" -b "$2" --data-urlencode "login_token=$t" \
    --data-urlencode "name=$3" --data-urlencode "password=$4" "$1/login"
}
check "/e2e/hosts/web/session-shared" '[ "$(login "$W1" "$work/jar" rita pw-reviewer-0123456)" = 303 ] &&
  [ "$(code -b "$work/jar" "$W2/")" = 200 ] && [ "$(code "$W2/")" = 303 ]'
for i in 1 2 3; do login "$W1" "$work/jar-t" raul wrong-password-x >/dev/null; done
check "/e2e/hosts/web/throttling-shared" '[ "$(login "$W2" "$work/jar-t2" raul pw-reviewer-0123456)" = 429 ]'
if [ "$failed" -ne 0 ]; then
  tail -n 20 "$work/workerA.log" "$work/workerB.log" "$log" "$work/db/server.log" >&2
fi
[ "$failed" -eq 0 ]
