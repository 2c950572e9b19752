#!/usr/bin/env bash
# The Debian package: built with dpkg-buildpackage (packaging/build-deb.sh),
# its contents, control data and maintainer scripts inspected with dpkg-deb,
# the systemd units scored by `systemd-analyze security --offline`, then
# installed with dpkg into a throwaway root that the test builds
# (package-root.sh: nothing quire left on the machine is seen or changed from
# inside it) where the maintainer scripts really run:
# the quire user, permissions, `quire init`, `quire doctor`, the service's
# command line as that user answering over HTTP and processing an invoice,
# and a purge. Prints TAP. Usage: package.sh SOURCE_DIR MAKE_INVOICE
set -u
SRC=$1
MAKE_INVOICE=$2
. "$(dirname "$0")/tap.sh"

work=$(mktemp -d /tmp/quire-pkg-XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "1..20"
if ! command -v dpkg-buildpackage >/dev/null || ! command -v dh >/dev/null; then
  for i in $(seq 19); do skip "/package/$i" "dpkg-dev or debhelper missing (packaging/deps.sh installs them)"; done
  exit 0
fi

# QUIRE_PACKAGE_DEB: an already built package to check instead (quicker when iterating).
deb=${QUIRE_PACKAGE_DEB:-$("$SRC/packaging/build-deb.sh" "$work/out" 2>"$work/build.err" | tail -1)}
check "/package/builds" '[ -f "$deb" ] || { cat "$work/build.err" >&2; false; }'
dpkg-deb -c "$deb" 2>/dev/null | awk '{print $1, $2, $6}' >"$work/contents"
has() { grep -q " $1\$" "$work/contents"; }
check "/package/contents" 'has ./usr/bin/quire && has ./usr/libexec/quire/quire-full && has ./usr/libexec/quire/quire-parse && has ./lib/systemd/system/quire.service &&
  has ./lib/systemd/system/quire-worker@.service && has ./etc/quire/quire.conf &&
  has ./usr/share/man/man1/quire.1.gz && has ./usr/share/quire/migrations/0001_initial.sql &&
  has ./usr/share/quire/schemas/invoice.json && has ./var/lib/quire/ &&
  grep -q "^-rw-r----- root/root ./etc/quire/quire.conf$" "$work/contents"'
mkdir -p "$work/ctl" "$work/x"
dpkg-deb -e "$deb" "$work/ctl"
dpkg-deb -x "$deb" "$work/x"
check "/package/control" 'dpkg-deb -f "$deb" Depends | grep -q "postgresql-15" &&
  dpkg-deb -f "$deb" Depends | grep -q "adduser" && dpkg-deb -f "$deb" Depends | grep -q "libpoppler-glib8" &&
  dpkg-deb -f "$deb" Depends | grep -q "libtesseract5" &&
  grep -qx "/etc/quire/quire.conf" "$work/ctl/conffiles"'
check "/package/maintainer-scripts" '(for s in postinst postrm prerm; do sh -n "$work/ctl/$s" || exit 1; done) &&
  grep -q "adduser --system --group --home /var/lib/quire" "$work/ctl/postinst" &&
  grep -q "runuser -u quire -- .*quire init" "$work/ctl/postinst" &&
  grep -q "deb-systemd-helper enable .quire.service." "$work/ctl/postinst" &&
  ! grep -q "quire-worker@.service" "$work/ctl/postinst"'
check "/package/config" 'grep -qx "data_dir = /var/lib/quire" "$work/x/etc/quire/quire.conf" &&
  grep -qx "run_as = quire" "$work/x/etc/quire/quire.conf" &&
  QUIRE_CONFIG="$work/x/etc/quire/quire.conf" "$work/x/usr/bin/quire" config show | grep -qx "general.data_dir = /var/lib/quire"'
# Every command `quire --help` lists has an entry of its own in the man page.
man1="$SRC/packaging/quire.1"
cmds=$("$work/x/usr/bin/quire" --help 2>&1 | sed -n 's/^  \([a-z]*\) .*/\1/p')
tags=$(sed -n '/^\.TP/{n;p;}' "$man1" | sed 's/\\f[BIRP]//g; s/^\.BI\{0,1\} //')
check "/package/man-page-commands" '[ -n "$cmds" ] && (for c in $cmds; do
    echo "$tags" | grep -Eq "(^|, )$c( |,|\$)" || { echo "# quire.1 lacks $c" >&2; exit 1; }; done)'
# The worker unit must start on a host without quire.service (database.url elsewhere).
wunit="$work/x/lib/systemd/system/quire-worker@.service"
check "/package/worker-unit-standalone" '! grep -q "^Requires=.*quire.service" "$wunit" &&
  ! grep -q "^BindsTo=" "$wunit" && grep -q "^After=.*quire.service" "$wunit"'
# The web-only unit runs `quire web` in place of quire.service, and is neither enabled nor started by the
# package (its postinst re-enables it only where it was enabled before, as dh_installsystemd --no-enable writes).
webunit="$work/x/lib/systemd/system/quire-web.service"
check "/package/web-unit" 'grep -qx "ExecStart=/usr/bin/quire web" "$webunit" && grep -qx "Conflicts=quire.service" "$webunit" &&
  grep -q "^LoadCredential=quire-kek:" "$webunit" &&
  grep -q "deb-systemd-helper debian-installed .quire-web.service." "$work/ctl/postinst" &&
  ! grep -q "deb-systemd-invoke .* .quire-web.service." "$work/ctl/postinst"'
unit="$work/x/lib/systemd/system/quire.service"
check "/package/unit-hardening" '(for d in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
    PrivateDevices=yes "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" SystemCallFilter=@system-service \
    MemoryMax= TasksMax= StateDirectory=quire User=quire LoadCredential=quire-kek:; do
    grep -q "^$d" "$unit" || { echo "# missing $d" >&2; exit 1; }; done)'
if systemd-analyze --help 2>/dev/null | grep -q -- "--offline"; then
  score() { systemd-analyze security --offline=true "$1" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p'; }
  s1=$(score "$unit")
  s2=$(score "$work/x/lib/systemd/system/quire-worker@.service")
  echo "# systemd-analyze security: quire.service $s1, quire-worker@.service $s2"
  check "/package/security-score-ok" 'echo "$s1" | grep -Eq " (SAFE|OK)$" && echo "$s2" | grep -Eq " (SAFE|OK)$"'
else
  skip "/package/security-score-ok" "systemd-analyze without --offline"
fi

# The air-gapped bundle, built from this .deb without network: the Debian
# packages quire depends on are stand-ins here (empty packages of the same
# names and versions that satisfy the .deb's Depends, and the OCR data), since
# CI cannot download the real closure. What is checked: the tarball's layout,
# that bundle.sh refuses a bundle apt cannot resolve from itself alone, and
# install.sh resolving quire and every dependency from the bundle alone for a
# machine with nothing installed (apt-get --simulate; nothing is installed).
mkdir -p "$work/deps" "$work/bundle" "$work/unpacked"
standin() { # NAME VERSION
  mkdir -p "$work/si/$1/DEBIAN"
  printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: Quire tests <tests@localhost>\nDescription: stand-in\n' \
    "$1" "$2" >"$work/si/$1/DEBIAN/control"
  dpkg-deb --build --root-owner-group "$work/si/$1" "$work/deps/${1}_$2_all.deb" >/dev/null
}
(dpkg-deb -f "$deb" Depends; echo ", tesseract-ocr-eng") | tr ',' '\n' | sed 's/|.*//; s/^ *//; s/ *$//' | grep -v '^$' |
  while read -r name op ver; do
    ver=${ver%)}
    case $op in "(>="* | "(="*) ;; *) ver=1.0 ;; esac
    standin "$name" "${ver:-1.0}"
  done
ndeps=$(ls "$work/deps" | wc -l)
tarball=$("$SRC/packaging/bundle.sh" --deb "$deb" --debs-from "$work/deps" "$work/bundle" 2>"$work/bundle.err" | tail -1)
check "/package/bundle-builds" '[ "$ndeps" -gt 3 ] && [ -f "$tarball" ] || { sed "s/^/# /" "$work/bundle.err" >&2; false; }'
tar -tzvf "$tarball" 2>/dev/null | awk '{print $1, $6}' >"$work/bundle.list"
name=$(basename "${tarball:-none}" .tar.gz)
check "/package/bundle-contents" 'grep -q " $name/debs/$(basename "$deb")\$" "$work/bundle.list" &&
  grep -q " $name/debs/Packages.gz\$" "$work/bundle.list" && grep -q "^-rwx.* $name/install.sh\$" "$work/bundle.list" &&
  (for d in "$work"/deps/*.deb; do grep -q " $name/debs/$(basename "$d")\$" "$work/bundle.list" ||
    { echo "# bundle lacks $(basename "$d")" >&2; exit 1; }; done)'
tar -xzf "$tarball" -C "$work/unpacked" 2>/dev/null
"$work/unpacked/$name/install.sh" --check-complete >"$work/install.out" 2>&1
check "/package/bundle-install-resolves-alone" 'grep -q "^Inst quire " "$work/install.out" &&
  grep -q "^Inst postgresql-15 " "$work/install.out" && grep -q "^Inst tesseract-ocr-eng " "$work/install.out" &&
  [ "$(grep -c "^Inst " "$work/install.out")" -eq "$((ndeps + 1))" ] || { sed "s/^/# /" "$work/install.out" >&2; false; }'
rm "$work"/deps/postgresql-15_*.deb
"$SRC/packaging/bundle.sh" --deb "$deb" --debs-from "$work/deps" "$work/bundle2" >/dev/null 2>"$work/bundle2.err"
check "/package/bundle-refuses-incomplete" '! ls "$work"/bundle2/*.tar.gz >/dev/null 2>&1 &&
  grep -q "does not hold every package" "$work/bundle2.err"'

# The throwaway root (package-root.sh): nothing of quire on the machine is seen
# or changed from inside it.
cat >"$work/inside.sh" <<'EOF'
set -u
cd /
dpkg -i /tmp/quire.deb >/tmp/dpkg.log 2>&1 || { tail -20 /tmp/dpkg.log >&2; echo "FAIL install"; }
echo "user $(getent passwd quire | cut -d: -f6,7)"
echo "etc $(stat -c '%a %U:%G' /etc/quire) $(stat -c '%a %U:%G' /etc/quire/quire.conf)"
echo "data $(stat -c '%a %U' /var/lib/quire) $(stat -c '%a %U' /var/lib/quire/keys/kek.key 2>&1) $(test -f /var/lib/quire/postgres/PG_VERSION && echo cluster)"
echo "enabled $(readlink /etc/systemd/system/multi-user.target.wants/quire.service)"
runuser -u quire -- quire doctor >/tmp/doctor.out 2>&1 && echo "doctor ok" || sed 's/^/# /' /tmp/doctor.out >&2
# The service's command lines, as systemd would run them (credential and environment from the unit).
install -d -o quire -m 0500 /run/credentials/quire.service # as systemd makes it: the service user only
install -o quire -m 0400 /var/lib/quire/keys/kek.key /run/credentials/quire.service/quire-kek
export CREDENTIALS_DIRECTORY=/run/credentials/quire.service
eval "$(sed -n 's/^Environment=//p' /lib/systemd/system/quire.service | sed "s|%d|$CREDENTIALS_DIRECTORY|g" |
  tr ' ' '\n' | sed 's/^/export /')"
export QUIRE_WEB_LISTEN=127.0.0.1:0
env | grep -E "^(QUIRE|PGOPTIONS)" | sed 's/^/env /'
runuser -u quire -- quire migrate >/tmp/serve.log 2>&1 || echo "FAIL migrate"
# setpriv execs quire itself (as systemd would), so SIGTERM reaches it directly.
setpriv --reuid=quire --regid=quire --init-groups quire serve >/tmp/serve.out 2>>/tmp/serve.log &
pid=$!
# conditions, not times: a busy machine may take minutes
for _ in $(seq 1500); do grep -q "serving on" /tmp/serve.out && break; kill -0 $pid 2>/dev/null || break; sleep 0.2; done
port=$(sed -n 's/.*127.0.0.1:\([0-9]*\)\/.*/\1/p' /tmp/serve.out)
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && echo "healthz ok"
/tmp/make-invoice /tmp/inv.pdf --number INV-PKG-0001
chmod 644 /tmp/inv.pdf
runuser -u quire -- quire submit /tmp/inv.pdf >/dev/null 2>>/tmp/serve.log
for _ in $(seq 1000); do runuser -u quire -- quire status 2>/dev/null | grep -Eq "done +1$" && break; kill -0 $pid 2>/dev/null || break; sleep 0.3; done
runuser -u quire -- quire status 2>/dev/null | grep -Eq "done +1$" && echo "processed ok"
kill -TERM $pid
wait $pid && echo "stopped ok"
runuser -u quire -- quire show 1 2>/dev/null | grep -q '"INV-PKG-0001"' && echo "show ok"
tail -n 15 /tmp/serve.out /tmp/serve.log >&2
# Configuring again (an upgrade) keeps the key; with the key file moved away
# (sealed as a credential), it makes no new one.
sum=$(sha256sum </var/lib/quire/keys/kek.key)
/var/lib/dpkg/info/quire.postinst configure 0.1.0 >/tmp/postinst2.log 2>&1 &&
  [ "$(sha256sum </var/lib/quire/keys/kek.key)" = "$sum" ] && echo "reconfigure keeps key"
mv /var/lib/quire/keys/kek.key /tmp/kek.sealed
/var/lib/dpkg/info/quire.postinst configure 0.1.0 >/tmp/postinst3.log 2>&1 &&
  [ ! -e /var/lib/quire/keys/kek.key ] && grep -q "not run" /tmp/postinst3.log && echo "reconfigure without key file ok"
sed 's/^/postinst: /' /tmp/postinst2.log /tmp/postinst3.log >&2
mv /tmp/kek.sealed /var/lib/quire/keys/kek.key
dpkg --purge quire >/tmp/purge.log 2>&1 && echo "purged $(test -e /usr/bin/quire && echo binary-left) $(test -e /etc/quire/quire.conf && echo conf-left) $(test -d /var/lib/quire/keys && echo data-kept)"
EOF
if unshare -m true 2>/dev/null; then
  unshare -m bash "$(dirname "$0")/package-root.sh" "$work/throwaway" "$MAKE_INVOICE" "$deb" "$work/inside.sh" \
    >"$work/inside.out" 2>"$work/inside.err" || true
  sed 's/^/# /' "$work/inside.out"
  saw() { grep -q "$1" "$work/inside.out"; }
  check "/package/install-scratch-root" '! saw "^FAIL" && saw "^user /var/lib/quire:/usr/sbin/nologin$" &&
    saw "^enabled /lib/systemd/system/quire.service$" || { sed "s/^/# /" "$work/inside.err" >&2; false; }'
  check "/package/permissions" 'saw "^etc 750 root:quire 640 root:quire$" && saw "^data 700 quire 600 quire cluster$"'
  check "/package/doctor-as-service-user" 'saw "^doctor ok$"'
  check "/package/service-runs" 'saw "^healthz ok$" && saw "^processed ok$" && saw "^stopped ok$" && saw "^show ok$" ||
    { sed "s/^/# /" "$work/inside.err" >&2; false; }'
  check "/package/postinst-keeps-key" 'saw "^reconfigure keeps key$" && saw "^reconfigure without key file ok$" ||
    { grep "^postinst: " "$work/inside.err" | sed "s/^/# /" >&2; false; }'
  check "/package/purge" 'saw "^purged   data-kept$"'
else
  for t in install-scratch-root permissions doctor-as-service-user service-runs postinst-keeps-key purge; do
    skip "/package/$t" "no private mount namespace here (needs root)"
  done
fi
[ "$failed" -eq 0 ]
