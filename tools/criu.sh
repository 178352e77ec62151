#!/bin/bash
# CRIU for hull's checkpoint tests and engine scenarios: Debian 12's criu 3.17 cannot dump on kernels >= 6.13
# (`vdso: Unexpected rt vDSO area bounds`, fixed in CRIU 4.1), so a trixie tree with criu 4.1 is built once with
# mmdebstrap (cached in $HULL_CRIU_CACHE, default /var/cache/hull-criu) and WRAPPER (default build/criu/criu) runs it
# through that tree's own dynamic loader and libraries (from a chroot it fails: it must see the host's /proc and
# mounts as they are). Only the tests and scenarios put WRAPPER's directory first on PATH; users install CRIU >= 4.1.
#
# usage: tools/criu.sh [WRAPPER]
set -euo pipefail

wrapper=${1:-build/criu/criu}
cache=${HULL_CRIU_CACHE:-/var/cache/hull-criu}
tree="$cache/tree"
mirror=${HULL_CRIU_MIRROR:-http://deb.debian.org/debian}

if [ ! -x "$tree/usr/sbin/criu" ]; then
    command -v mmdebstrap >/dev/null || tools/apt-install.sh mmdebstrap
    mkdir -p "$cache"
    rm -rf "$tree.tmp"
    echo "criu: building a Debian trixie tree with criu 4.1 in $tree (log: $cache/mmdebstrap.log)" >&2
    nice -n 19 mmdebstrap --mode=root --variant=minbase --include=criu --aptopt='Acquire::Retries "3"' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        trixie "$tree.tmp" "deb $mirror trixie main" >"$cache/mmdebstrap.log" 2>&1 \
        || { tail -n 20 "$cache/mmdebstrap.log" >&2; echo "criu: mmdebstrap failed" >&2; exit 1; }
    mv "$tree.tmp" "$tree"
fi

mkdir -p "$(dirname "$wrapper")"
cat >"$wrapper.tmp" <<EOF
#!/bin/sh
# CRIU 4.1 from $tree (tools/criu.sh), run with that tree's loader and libraries.
exec "$tree/usr/lib64/ld-linux-x86-64.so.2" --library-path "$tree/usr/lib/x86_64-linux-gnu" "$tree/usr/sbin/criu" "\$@"
EOF
chmod +x "$wrapper.tmp"
mv "$wrapper.tmp" "$wrapper"
"$wrapper" --version | head -n1 >&2
