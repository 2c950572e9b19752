#!/usr/bin/env bash
# End-to-end: the security commands of the real quire binary.
# Key file checks, keys rotate/status/retire, users and tokens, signed audit checkpoints against
# a superuser's edit, erasure (and a backup from before it, which still restores the erased
# document, as `quire erase` reminds), a passphrase keyring with a wrong passphrase, and a
# canary string from the PDF found nowhere in pg_dump, the data directory or the logs afterwards.
# Prints TAP. Usage: security.sh QUIRE MAKE_INVOICE
set -u
QUIRE=$1
MAKE_INVOICE=$2
. "$(dirname "$0")/tap.sh"

work=$(mktemp -d /tmp/quire-e2e-sec-XXXXXX)
chmod 711 "$work"
export QUIRE_GENERAL_DATA_DIR="$work/data"
export QUIRE_AUTH_PASSWORD_MEM_MB=8 QUIRE_AUTH_PASSWORD_OPS=1
unset QUIRE_CONFIG QUIRE_DATABASE_URL QUIRE_PASSPHRASE QUIRE_PASSWORD CREDENTIALS_DIRECTORY
log="$work/quire.log"
canary="CANARY-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
cleanup() {
  "$QUIRE" stop >/dev/null 2>&1
  QUIRE_GENERAL_DATA_DIR="$work/pdata" "$QUIRE" stop >/dev/null 2>&1
  QUIRE_GENERAL_DATA_DIR="$work/rdata" "$QUIRE" stop >/dev/null 2>&1
  QUIRE_GENERAL_DATA_DIR="$work/fdata" "$QUIRE" stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

echo "1..22"
"$MAKE_INVOICE" "$work/invoice.pdf" --number INV-SEC-7 --canary "$canary"
"$MAKE_INVOICE" "$work/other.pdf" --number INV-SEC-8
check "/e2e/security/init-keyring-in-database" '"$QUIRE" init >>"$log" 2>&1 && [ ! -e "$work/data/keys/keyring" ] &&
  "$QUIRE" doctor 2>&1 | grep -q "^ok    keyring in the database, newest key version 1$"'
chmod 644 "$work/data/keys/kek.key"
check "/e2e/security/world-readable-key-refused" '! "$QUIRE" keys status 2>"$work/err" && grep -q "chmod 600" "$work/err"'
chmod 600 "$work/data/keys/kek.key"
out=$("$QUIRE" submit "$work/invoice.pdf" "$work/other.pdf" 2>>"$log")
doc=$(echo "$out" | sed -n 's/.*invoice.pdf: document \([0-9]*\),.*/\1/p')
other=$(echo "$out" | sed -n 's/.*other.pdf: document \([0-9]*\),.*/\1/p')
"$QUIRE" worker --drain >>"$log" 2>&1
check "/e2e/security/keys-status" '"$QUIRE" keys status 2>>"$log" | grep -Eq "^1[[:space:]]+active[[:space:]]+yes[[:space:]]+2$"'
check "/e2e/security/keys-rotate" '"$QUIRE" keys rotate 2>>"$log" | grep -q "key version 2 is active; 2 data keys rewrapped" &&
  "$QUIRE" keys status | grep -Eq "^1[[:space:]]+decrypt[[:space:]]+yes[[:space:]]+0$"'
check "/e2e/security/keys-retire" '"$QUIRE" keys retire 1 >>"$log" 2>&1 && ! "$QUIRE" keys retire 2 2>/dev/null &&
  "$QUIRE" keys status | grep -Eq "^1[[:space:]]+retired[[:space:]]+no[[:space:]]+0$" &&
  "$QUIRE" show "$doc" 2>>"$log" | grep -q "INV-SEC-7"'
check "/e2e/security/users" 'QUIRE_PASSWORD="a long password" "$QUIRE" user add alice --role reviewer >>"$log" 2>&1 &&
  ! QUIRE_PASSWORD="a long password" "$QUIRE" user add bob --role superuser 2>/dev/null &&
  "$QUIRE" user disable alice >>"$log" 2>&1 && "$QUIRE" user list | grep -Eq "^alice[[:space:]]+reviewer[[:space:]]+disabled"'
token=$("$QUIRE" token create ci --role operator --days 7 2>>"$log" | grep "^qt_")
check "/e2e/security/tokens" '[ ${#token} -gt 40 ] && "$QUIRE" token list | grep -Eq "^1[[:space:]]+ci[[:space:]]+operator[[:space:]]+valid" &&
  ! "$QUIRE" token list | grep -q "$token" && "$QUIRE" token revoke 1 >>"$log" 2>&1 &&
  "$QUIRE" token list | grep -q "revoked"'
"$QUIRE" backup "$work/pre-erase.backup" >>"$log" 2>&1
check "/e2e/security/erase-asks" '! "$QUIRE" erase "$doc" </dev/null 2>"$work/err" >/dev/null && grep -q -- "pass --yes" "$work/err" &&
  "$QUIRE" show "$doc" 2>>"$log" | grep -q "INV-SEC-7"'
check "/e2e/security/erase" '"$QUIRE" erase --yes "$doc" 2>>"$log" >"$work/erase.out" &&
  grep -Eq "^erased at [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC\. " "$work/erase.out" &&
  grep -q "Every \`quire backup\` file made before [0-9-]* [0-9:]* UTC holds both the rows and such a keyring" "$work/erase.out" &&
  ! "$QUIRE" show "$doc" 2>"$work/err" && grep -q "erased" "$work/err" &&
  "$QUIRE" show "$other" 2>>"$log" | grep -q "INV-SEC-8" &&
  "$QUIRE" keys status | grep -Eq "^2[[:space:]]+retired[[:space:]]+no[[:space:]]+0$"'
# The key rotation that follows an erasure fails (the keyring's row refuses writes): the command
# says loudly that copies of the rows still decrypt and how to finish, and exits non-zero; the
# document is erased all the same.
"$MAKE_INVOICE" "$work/third.pdf" --number INV-SEC-9
third=$("$QUIRE" submit "$work/third.pdf" 2>>"$log" | sed -n 's/.*document \([0-9]*\),.*/\1/p')
"$QUIRE" worker --drain >>"$log" 2>&1
"$QUIRE" start >>"$log" 2>&1
sq() { "$bindir/psql" -h "$work/data/run" -U quire -d quire -qc "$1" >>"$log" 2>&1; }
sq "CREATE FUNCTION refuse_ring() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN RAISE EXCEPTION 'keyring writes refused'; END\$\$;
  CREATE TRIGGER refuse_ring BEFORE UPDATE ON keyring FOR EACH ROW EXECUTE FUNCTION refuse_ring()"
check "/e2e/security/erase-rotation-fails-loudly" '[ -n "$third" ] && ! "$QUIRE" erase --yes "$third" >"$work/erase2.out" 2>"$work/erase2.err" &&
  grep -q "^document $third erased" "$work/erase2.out" && grep -q "THE ERASURE IS NOT COMPLETE" "$work/erase2.err" &&
  grep -q "keyring writes refused" "$work/erase2.err" && grep -q "STILL DECRYPT" "$work/erase2.err" &&
  grep -q "run \`quire keys rotate\` and \`quire keys retire\`" "$work/erase2.err" &&
  ! "$QUIRE" show "$third" 2>"$work/err" && grep -q "erased" "$work/err"'
sq "DROP TRIGGER refuse_ring ON keyring; DROP FUNCTION refuse_ring()"
"$QUIRE" stop >>"$log" 2>&1
# What the reminder says: a backup made before the erasure, restored with the key file, still
# opens the erased document.
mkdir -p "$work/rdata/keys" && chmod 700 "$work/rdata" "$work/rdata/keys"
cp "$work/data/keys/kek.key" "$work/rdata/keys/kek.key" && chmod 600 "$work/rdata/keys/kek.key"
check "/e2e/security/pre-erasure-backup-restores-erased" 'QUIRE_GENERAL_DATA_DIR="$work/rdata" "$QUIRE" restore "$work/pre-erase.backup" >>"$log" 2>&1 &&
  QUIRE_GENERAL_DATA_DIR="$work/rdata" "$QUIRE" show "$doc" 2>>"$log" | grep -q "INV-SEC-7"'
QUIRE_GENERAL_DATA_DIR="$work/rdata" "$QUIRE" stop >/dev/null 2>&1
rm -rf "$work/rdata" "$work/pre-erase.backup"
check "/e2e/security/audit-checkpoint-verify" '"$QUIRE" audit checkpoint --out "$work/cp.txt" >>"$log" 2>&1 &&
  grep -q "^signature: " "$work/cp.txt" && grep -q "^merkle-root: " "$work/cp.txt" &&
  "$QUIRE" audit verify --checkpoint "$work/cp.txt" 2>>"$log" | grep -q "audit log intact"'
check "/e2e/security/audit-witness" '[ "$(stat -c %a "$work/data/keys/audit.witness")" = 600 ] &&
  grep -c "^quire-witness-v1 seq=" "$work/data/keys/audit.witness" | grep -qv "^0$" &&
  "$QUIRE" audit checkpoint --since "$work/cp.txt" --out "$work/cp2.txt" >>"$log" 2>&1 &&
  "$QUIRE" audit verify --since "$work/cp.txt" --checkpoint "$work/cp2.txt" 2>>"$log" | grep -q "extends the earlier"'
has_actions() {
  for a in document.erased key.rotated key.rewrapped key.retired user.added user.disabled token.created token.revoked \
    audit.verified; do grep -qx "$a" "$work/actions" || return 1; done
}
check "/e2e/security/audit-has-events" '"$QUIRE" start >>"$log" 2>&1 &&
  "$bindir/psql" -h "$work/data/run" -U quire -d quire -Atc "SELECT DISTINCT action FROM audit_log ORDER BY 1" >"$work/actions" 2>>"$log" &&
  has_actions'

"$bindir/pg_dump" -h "$work/data/run" -U quire quire >"$work/dump.sql" 2>>"$log"
check "/e2e/security/canary-not-in-pg-dump" '[ -s "$work/dump.sql" ] && ! grep -q "$canary" "$work/dump.sql" && ! grep -q "$token" "$work/dump.sql"'
# A superuser edits an entry the witness's checkpoint covers.
"$bindir/psql" -h "$work/data/run" -U quire -d quire -qc "ALTER TABLE audit_log DISABLE TRIGGER USER;
  UPDATE audit_log SET actor = 'user:mallory' WHERE id = 3; ALTER TABLE audit_log ENABLE TRIGGER USER" >>"$log" 2>&1
"$QUIRE" stop >>"$log" 2>&1
check "/e2e/security/audit-tamper-detected" '! "$QUIRE" audit verify --checkpoint "$work/cp.txt" 2>"$work/err" &&
  grep -q "audit chain broken at entry 3" "$work/err"'
check "/e2e/security/canary-not-in-data-dir" '! grep -r -a -q "$canary" "$work/data"'
check "/e2e/security/canary-not-in-logs" '! grep -a -q "$canary" "$log" "$work/data/postgres.log"'

# An installation from before the keyring moved into the database: its keyring file is imported
# once, at the first start of a command in database mode, and the documents still open.
fq() { QUIRE_GENERAL_DATA_DIR="$work/fdata" "$QUIRE" "$@"; }
check "/e2e/security/file-keyring-imported-once" 'QUIRE_VAULT_KEYRING_IN=file fq init >>"$log" 2>&1 &&
  [ -f "$work/fdata/keys/keyring" ] &&
  fdoc=$(QUIRE_VAULT_KEYRING_IN=file fq submit "$work/other.pdf" 2>>"$log" | sed -n "s/.*document \([0-9]*\),.*/\1/p") &&
  fq worker --drain >>"$log" 2>&1 && [ ! -e "$work/fdata/keys/keyring" ] && [ -f "$work/fdata/keys/keyring.imported" ] &&
  fq show "$fdoc" 2>>"$log" | grep -q "INV-SEC-8" && fq keys rotate >>"$log" 2>&1 && [ ! -e "$work/fdata/keys/keyring" ] &&
  fq doctor 2>&1 | grep -q "keyring.imported: the keyring file imported into the database is still here"'

# A passphrase keyring (cheap Argon2id parameters for the test).
export QUIRE_VAULT_KEK_SOURCE=passphrase QUIRE_VAULT_ARGON2_OPS=1 QUIRE_VAULT_ARGON2_MEM_MB=8
check "/e2e/security/passphrase-init" 'QUIRE_GENERAL_DATA_DIR="$work/pdata" QUIRE_PASSPHRASE="right horse battery" "$QUIRE" init >>"$log" 2>&1 &&
  [ ! -e "$work/pdata/keys/kek.key" ]'
check "/e2e/security/wrong-passphrase" '! QUIRE_GENERAL_DATA_DIR="$work/pdata" QUIRE_PASSPHRASE="wrong horse battery" "$QUIRE" keys status 2>"$work/err" &&
  grep -q "wrong passphrase" "$work/err" && ! grep -q "wrong horse" "$work/err"'
check "/e2e/security/right-passphrase" 'QUIRE_GENERAL_DATA_DIR="$work/pdata" QUIRE_PASSPHRASE="right horse battery" "$QUIRE" keys status 2>>"$log" |
  grep -Eq "^1[[:space:]]+active[[:space:]]+yes[[:space:]]+0$"'
[ "$failed" -eq 0 ]
