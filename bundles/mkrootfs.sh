#!/bin/sh
# Assemble a busybox root filesystem from Debian's busybox-static: nothing is downloaded from an image registry.
#   bundles/mkrootfs.sh DEST [EXTRA_BINARY...]
# EXTRA_BINARY files (static executables, e.g. the conformance checker) are copied to DEST/ by their base name.
set -eu
dest=${1:?usage: mkrootfs.sh DEST [EXTRA_BINARY...]}
shift
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "mkrootfs: $busybox not found: apt-get install -y busybox-static" >&2; exit 1; }
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || ldd "$busybox" 2>&1 | grep -q 'not a dynamic' \
  || { echo "mkrootfs: $busybox is not static: apt-get install -y busybox-static" >&2; exit 1; }
tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/sbin" "$tmp/usr/bin" "$tmp/usr/sbin" "$tmp/etc" "$tmp/root" "$tmp/tmp" \
         "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/home" "$tmp/var" "$tmp/run"
chmod 1777 "$tmp/tmp"
cp "$busybox" "$tmp/bin/busybox"
for applet in $("$busybox" --list-full); do
  [ -e "$tmp/$applet" ] || ln -s /bin/busybox "$tmp/$applet"
done
cat > "$tmp/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat > "$tmp/etc/group" <<'GR'
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
GR
echo 'hull' > "$tmp/etc/hostname"
for extra in "$@"; do
  cp "$extra" "$tmp/$(basename "$extra")"
done
rm -rf "$dest"
mv "$tmp" "$dest"
