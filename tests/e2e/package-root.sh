#!/usr/bin/env bash
# The package test's throwaway root, built and entered inside a private mount
# namespace (package.sh runs it with `unshare -m`): the machine's / seen
# through an overlay whose upper layer is thrown away, with /etc and /var made
# here instead of the machine's:
#   /etc  a copy of the machine's, less every trace of quire (the quire user
#         and group, /etc/quire, the units' links);
#   /var  new, holding only a copy of the dpkg database with quire removed;
#   /tmp, /run, /home, /root, /srv  empty tmpfs.
# So nothing quire left on the machine (a quick start's /var/lib/quire and key
# file, an installed package, its user or service) can be seen or changed from
# inside, and every mount vanishes with the namespace. Then runs SCRIPT in it.
# Usage: package-root.sh WORK MAKE_INVOICE DEB SCRIPT   (WORK: an empty folder)
set -eu
# Mounting in the machine's own namespace would cover its /etc, /tmp, /run...
if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]; then
  echo "package-root.sh: run me inside a private mount namespace (unshare -m)" >&2
  exit 2
fi
w=$1
root=$w/root
mkdir -p "$root" "$w/up" "$w/wk" "$w/etc" "$w/var"
mount --make-rprivate /
mount -t overlay overlay -o lowerdir=/,upperdir="$w/up",workdir="$w/wk" "$root"

cp -a /etc/. "$w/etc/"
for f in passwd group shadow gshadow subuid subgid; do
  for g in "$w/etc/$f" "$w/etc/$f-"; do
    if [ -f "$g" ]; then sed -i '/^quire:/d' "$g"; fi
  done
done
rm -rf "$w/etc/quire"
find "$w/etc/systemd" -name 'quire*' -prune -exec rm -rf {} + 2>/dev/null || true

(cd "$w/var" && mkdir -p lib/dpkg lib/systemd lib/misc log cache backups spool mail local opt tmp &&
  chmod 1777 tmp && ln -s /run run && ln -s /run/lock lock)
cp -a /var/lib/dpkg/. "$w/var/lib/dpkg/"
rm -f "$w"/var/lib/dpkg/info/quire.* "$w"/var/lib/dpkg/lock*
# dpkg's status file without a quire stanza (paragraphs are separated by blank lines)
awk -v RS= -v ORS='\n\n' '$0 !~ /^Package: quire\n/' "$w/var/lib/dpkg/status" >"$w/status.new"
mv "$w/status.new" "$w/var/lib/dpkg/status"

mount --bind "$w/etc" "$root/etc"
mount --bind "$w/var" "$root/var"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
for d in tmp run home root srv; do mount -t tmpfs tmpfs "$root/$d"; done
mkdir -p "$root/run/lock"
chmod 1777 "$root/tmp"
cp "$3" "$root/tmp/quire.deb"
cp "$2" "$root/tmp/make-invoice"
cp "$4" "$root/tmp/inside.sh"
if [ -e "$root/var/lib/quire" ] || [ -e "$root/etc/quire" ] || chroot "$root" getent passwd quire >/dev/null; then
  echo "FAIL the throwaway root still shows quire's state from the machine"
  exit 1
fi
exec chroot "$root" /bin/bash /tmp/inside.sh
