#!/usr/bin/env bash
# vm.sh: run a command as root in a throw-away guest that is the host users run: Debian 12 booted under QEMU with
# systemd as PID 1 and only cgroup v2, with podman + conmon, docker.io, containerd, runc and crun at their Debian
# defaults, and a regular user ("user", uid 1000, subordinate ids 100000:65536, lingering, so its systemd --user
# instance runs). Everything comes from Debian's packages (mmdebstrap + a Debian kernel); nothing else is fetched.
#
#   tools/vm.sh setup                                build the base image once (cached; later calls return at once)
#   tools/vm.sh run [-b HOSTPATH]... [opts] DIR CMD...
#                                                    boot, copy DIR to /payload and each HOSTPATH to the same path,
#                                                    run CMD as root (cwd /payload) in a system.slice unit once
#                                                    multi-user.target is reached, print its output, exit with its
#                                                    status; the guest is thrown away (the base image never changes)
#
# run options: -e NAME=VALUE (exported to CMD), -u USER (run CMD as USER in a login session with its systemd --user
# instance's XDG_RUNTIME_DIR and bus), -m MiB (default 3072), -c CPUS (default 2), -t SECONDS (whole run, default
# 1800), -n (lean: mask the engines' daemons for lanes that only need systemd).
# Environment: HULL_VM_CACHE (default /var/cache/hull-vm), HULL_VM_ACCEL (auto|kvm|tcg; auto = kvm only when
# /dev/kvm works and the CPU shows vmx/svm), HULL_VM_MIRROR and HULL_VM_SECURITY_MIRROR (default: the Debian
# mirrors this machine's apt uses for bookworm and bookworm-security), HULL_VM_KEEP=1 (keep the work dir),
# HULL_VM_VERBOSE=1 (guest console to stderr).
# Exit status: CMD's; 124 when the time limit ran out; 125 when the guest or this script failed.
#
# How it works: setup makes the root filesystem with mmdebstrap (a customize hook adds the user, a fixed machine id
# so every boot is not a first boot, and the runner unit), packs it into an ext4 image with mke2fs -d (no mount on
# the host) and boots it once to import a busybox image into docker, containerd (ctr and CRI) and podman (root and
# rootless).
# run boots a qcow2 overlay of that image with the kernel and initrd of the image's own Debian kernel package; the
# payload travels on a second disk (another mke2fs -d image); the runner unit (hull-vm-run.service, started only
# with hull.vm.run=1 on the kernel command line) copies it into place, runs CMD with its output on the second serial
# port, prints the exit status on the console and powers off.
set -euo pipefail

SELF=$(readlink -f "$0")
CACHE=${HULL_VM_CACHE:-/var/cache/hull-vm}
ACCEL=${HULL_VM_ACCEL:-auto}
# x86-64-v2 without AVX: "max" made container runtimes markedly slower under TCG.
TCG_CPU=qemu64,+rdrand,+cx16,+lahf-lm,+popcnt,+ssse3,+sse4.1,+sse4.2
KEEP=${HULL_VM_KEEP:-0}
VERBOSE=${HULL_VM_VERBOSE:-0}
# Raise when the recipe changes: a new base image is then built beside the old one.
RECIPE=4
BASE="$CACHE/base-r$RECIPE.qcow2"
# run's defaults (its options change them).
ENVS=()
BINDS=()
RUN_USER=
MEM=3072
CPUS=2
TIMEOUT=1800
LEAN=0
LEAN_UNITS="docker.service docker.socket containerd.service podman-restart.service podman-auto-update.timer"
PACKAGES=(systemd systemd-sysv dbus dbus-user-session udev kmod libpam-systemd procps iproute2 iptables jq
  busybox-static e2fsprogs util-linux strace podman conmon crun runc containerd docker.io tini catatonit uidmap
  fuse-overlayfs slirp4netns netavark aardvark-dns apparmor initramfs-tools linux-image-cloud-amd64
  python3-grpcio python3-protobuf protobuf-compiler criu)

say() { printf 'vm: %s\n' "$*" >&2; }
fail() { printf 'vm: error: %s\n' "$*" >&2; exit 125; }

# ---------------------------------------------------------------- files inside the guest

# /usr/local/sbin/hull-vm-runner, started by hull-vm-run.service.
runner_script() { cat <<'EOF'
#!/bin/bash
exec </dev/null
console=/dev/ttyS0 out=/dev/ttyS1
uptime_s() { cut -d' ' -f1 /proc/uptime; }
stty -F "$out" raw -echo 2>/dev/null
finish() {
    echo "hull-vm: command done at $(uptime_s)s" >"$console"
    sync
    printf '\nHULL_VM_EXIT_STATUS=%d\n' "$1" >"$console"
    systemctl --no-block poweroff
    exit 0
}
for _ in $(seq 150); do [ -b /dev/vdb ] && break; sleep 0.2; done
disk=/run/hull-vm/disk
mkdir -p "$disk"
mount -o ro /dev/vdb "$disk" || { echo "hull-vm: cannot mount the payload disk" >"$out"; finish 125; }
mkdir -p /payload
cp -a "$disk/payload/." /payload/ || finish 125
if [ -d "$disk/files" ]; then cp -a "$disk/files/." / || finish 125; fi
cp "$disk/control/cmd" /run/hull-vm/cmd
user=$(cat "$disk/control/user" 2>/dev/null || true)
umount "$disk"
export HOME=/root USER=root LOGNAME=root TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd /payload || finish 125
echo "hull-vm: command starts at $(uptime_s)s" >"$console"
if [ -n "$user" ]; then
    uid=$(id -u "$user") || finish 125
    chown -R "$user:" /payload
    chmod 0755 /run/hull-vm
    chmod 0644 /run/hull-vm/cmd
    for _ in $(seq 150); do [ -S "/run/user/$uid/bus" ] && break; sleep 0.2; done
    su -l "$user" -c "export XDG_RUNTIME_DIR=/run/user/$uid DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$uid/bus; cd /payload && exec bash /run/hull-vm/cmd" >"$out" 2>&1
else
    bash /run/hull-vm/cmd >"$out" 2>&1
fi
finish $?
EOF
}

runner_unit() { cat <<'EOF'
[Unit]
Description=hull vm.sh: the payload command (hull.vm.run=1)
ConditionKernelCommandLine=hull.vm.run=1
After=multi-user.target

[Service]
Type=exec
ExecStart=/usr/local/sbin/hull-vm-runner
StandardInput=null
StandardOutput=journal
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
EOF
}

# Run once in the booted guest while the base image is still writable.
provision_script() { cat <<'EOF'
set -ex
systemctl is-system-running --wait || systemctl --failed --no-legend
tar=/usr/local/share/hull-vm/busybox-rootfs.tar
# An imported image has no environment: PATH is set as Docker Hub's busybox sets it (containerd's CRI adds none).
path='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
docker import --change "$path" --change 'CMD ["/bin/sh"]' "$tar" docker.io/library/busybox:latest
docker save -o /tmp/busybox.tar docker.io/library/busybox:latest
ctr -n default images import /tmp/busybox.tar
# The CRI plugin's images (namespace k8s.io): busybox, and a pause image made of it (no registry is reachable).
docker import --change "$path" --change 'CMD ["sleep", "2147483647"]' "$tar" localhost/hull/pause:1
docker save -o /tmp/pause.tar localhost/hull/pause:1
ctr -n k8s.io images import /tmp/busybox.tar
ctr -n k8s.io images import /tmp/pause.tar
rm -f /tmp/busybox.tar /tmp/pause.tar
podman import --change "$path" --change 'CMD ["/bin/sh"]' "$tar" docker.io/library/busybox:latest
for _ in $(seq 150); do [ -S /run/user/1000/bus ] && break; sleep 0.2; done
su -l user -c "export XDG_RUNTIME_DIR=/run/user/1000 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus
  podman import --change '$path' --change 'CMD [\"/bin/sh\"]' $tar docker.io/library/busybox:latest"
# docker: hull by name beside the default runtime (tests copy hull to /usr/local/bin/hull); the default runtime
# and cgroup driver stay Debian's.
printf '{"runtimes": {"hull": {"path": "/usr/local/bin/hull"}}}\n' >/etc/docker/daemon.json
systemctl restart docker
# containerd as kubeadm users configure it: the CRI runc runtime with SystemdCgroup = true, and the runtime handler
# `hull` beside it, the same but for its binary (tests copy hull to /usr/local/bin/hull).
containerd config default >/etc/containerd/config.toml
sed -i -e 's/SystemdCgroup = false/SystemdCgroup = true/' \
  -e 's#sandbox_image = .*#sandbox_image = "localhost/hull/pause:1"#' /etc/containerd/config.toml
cat >>/etc/containerd/config.toml <<'TOML'
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hull]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hull.options]
    BinaryName = "/usr/local/bin/hull"
    SystemdCgroup = true
TOML
systemctl restart containerd
docker info --format '{{.CgroupDriver}} {{.CgroupVersion}}'
podman info --format '{{.Host.CgroupManager}} {{.Host.CgroupsVersion}}'
sync
EOF
}

# mmdebstrap's customize hook: runs on the host with the new root as $1.
customize() {
    local root=$1
    echo hull-vm >"$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 hull-vm\n' >"$root/etc/hosts"
    printf '/dev/vda / ext4 rw,errors=remount-ro 0 0\n' >"$root/etc/fstab"
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"
    echo >>"$root/etc/machine-id"
    chroot "$root" passwd -d root >/dev/null
    chroot "$root" useradd -m -u 1000 -s /bin/bash user
    echo 'user:100000:65536' >"$root/etc/subuid"
    echo 'user:100000:65536' >"$root/etc/subgid"
    mkdir -p "$root/var/lib/systemd/linger"
    : >"$root/var/lib/systemd/linger/user"
    install -d "$root/usr/local/sbin" "$root/usr/local/share/hull-vm" "$root/etc/systemd/system/multi-user.target.wants"
    runner_script >"$root/usr/local/sbin/hull-vm-runner"
    chmod 0755 "$root/usr/local/sbin/hull-vm-runner"
    runner_unit >"$root/etc/systemd/system/hull-vm-run.service"
    ln -sf /etc/systemd/system/hull-vm-run.service "$root/etc/systemd/system/multi-user.target.wants/"
    # A busybox root filesystem, imported as the engines' busybox image at provisioning.
    local bb
    bb=$(mktemp -d)
    mkdir -p "$bb"/{bin,etc,proc,sys,dev,tmp,root,var/tmp}
    cp "$root/bin/busybox" "$bb/bin/busybox"
    local applet
    for applet in $(chroot "$root" /bin/busybox --list); do
        [ -e "$bb/bin/$applet" ] || ln -s busybox "$bb/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$bb/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$bb/etc/group"
    chmod 1777 "$bb/tmp" "$bb/var/tmp"
    tar --numeric-owner --owner=0 --group=0 -C "$bb" -cf "$root/usr/local/share/hull-vm/busybox-rootfs.tar" .
    rm -rf "$bb" "$root/var/cache/apt/archives/"*.deb
}

# ---------------------------------------------------------------- setup

# The URI this machine's apt configuration gives for SUITE (one-line sources.list entries and deb822 .sources
# files alike).
apt_uri() {
    local suite=$1 file
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$file" ] || continue
        awk -v suite="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++;
            if ($(i + 1) == suite) { print $i; exit } }' "$file"
    done | head -n1 | grep . && return 0
    for file in /etc/apt/sources.list.d/*.sources; do
        [ -r "$file" ] || continue
        awk -v suite="$suite" 'BEGIN { RS = ""; FS = "\n" }
            { uri = ""; hit = 0; for (i = 1; i <= NF; i++) { if ($i ~ /^URIs:/) { split($i, u, " "); uri = u[2] }
              if ($i ~ /^Suites:/) { n = split($i, s, " "); for (j = 2; j <= n; j++) if (s[j] == suite) hit = 1 } }
              if (hit && uri != "") { print uri; exit } }' "$file"
    done | head -n1 | grep .
}

setup() {
    [ "$(id -u)" = 0 ] || fail "setup must run as root"
    mkdir -p "$CACHE"
    exec 8>"$CACHE/.lock"
    flock 8
    if [ -s "$BASE" ] && [ -e "$BASE.done" ]; then
        exec 8>&-
        return 0
    fi
    local missing=()
    command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
    command -v qemu-img >/dev/null || missing+=(qemu-utils)
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    command -v mke2fs >/dev/null || missing+=(e2fsprogs)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        apt-get -q update >&2
        DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "${missing[@]}" >&2
    fi
    local mirror security started root raw
    mirror=${HULL_VM_MIRROR:-$(apt_uri bookworm)} || fail "no Debian mirror for bookworm in this machine's apt sources: set HULL_VM_MIRROR"
    security=${HULL_VM_SECURITY_MIRROR:-$(apt_uri bookworm-security)} || fail "no mirror for bookworm-security in this machine's apt sources: set HULL_VM_SECURITY_MIRROR"
    started=$(date +%s)
    root="$CACHE/rootfs.tmp"
    raw="$CACHE/base.raw.tmp"
    rm -rf "$root" "$raw"
    say "building the guest's root filesystem with mmdebstrap (log: $CACHE/mmdebstrap.log)"
    nice -n 19 mmdebstrap --mode=root --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" \
        --aptopt='Acquire::Retries "3"' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --customize-hook="\"$SELF\" _customize \"\$1\"" \
        bookworm "$root" "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
        "deb $security bookworm-security main" >"$CACHE/mmdebstrap.log" 2>&1 \
        || { tail -n 30 "$CACHE/mmdebstrap.log" >&2; fail "mmdebstrap failed"; }
    local kernel initrd
    kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)
    initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -n1)
    [ -f "$kernel" ] && [ -f "$initrd" ] || fail "the image has no kernel or initrd"
    cp "$kernel" "$CACHE/vmlinuz"
    cp "$initrd" "$CACHE/initrd.img"
    nice -n 19 mke2fs -q -t ext4 -L hullvm -E root_owner=0:0 -d "$root" "$raw" 8G
    nice -n 19 qemu-img convert -O qcow2 "$raw" "$BASE.tmp"
    rm -rf "$raw" "$root"
    say "provisioning boot (busybox image for docker, containerd, podman root and rootless)"
    local work
    work=$(mktemp -d)
    provision_script >"$work/provision.sh"
    if ! (PROVISION_DISK="$BASE.tmp" GRACE=300 run_guest "$work" bash ./provision.sh) >"$CACHE/provision.log" 2>&1; then
        tail -n 40 "$CACHE/provision.log" >&2
        rm -rf "$work"
        fail "provisioning failed (log: $CACHE/provision.log)"
    fi
    rm -rf "$work"
    mv "$BASE.tmp" "$BASE"
    : >"$BASE.done"
    # Images of earlier recipes are not used any more.
    find "$CACHE" -maxdepth 1 -name 'base-r*.qcow2*' ! -name "base-r$RECIPE.qcow2*" -delete
    say "base image ready in $(($(date +%s) - started)) s: $BASE"
    exec 8>&-
}

# ---------------------------------------------------------------- run

accelerator() {
    case "$ACCEL" in
        kvm | tcg) echo "$ACCEL" ;;
        auto)
            if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then echo kvm; else echo tcg; fi
            ;;
        *) fail "HULL_VM_ACCEL must be auto, kvm or tcg" ;;
    esac
}

quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

QEMU_PID=
READER_PID=
WORK=
cleanup() {
    local status=$?
    if [ -n "$QEMU_PID" ]; then kill -KILL "$QEMU_PID" 2>/dev/null || true; fi
    if [ -n "$READER_PID" ]; then kill "$READER_PID" 2>/dev/null || true; fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "$KEEP" = 1 ]; then say "work dir kept: $WORK"; else rm -rf "$WORK"; fi
    fi
    return $status
}

# The second disk: the payload, the host paths given with -b, and the command.
payload_disk() {
    local dir=$1
    shift
    local stage="$WORK/stage"
    mkdir -p "$stage/control" "$stage/payload" "$stage/files"
    cp -a "$dir/." "$stage/payload/"
    local path dir
    for path in "${BINDS[@]}"; do
        [ -e "$path" ] || fail "-b $path: no such file or directory"
        path=$(readlink -f "$path")
        mkdir -p "$stage/files$(dirname "$path")"
        # The guest copies the staged tree over its / with cp -a: each staged directory takes the mode the host's
        # has (a binary under /tmp would otherwise turn the guest's /tmp into 0755 and break what writes there).
        dir=$(dirname "$path")
        while [ "$dir" != / ]; do
            chmod --reference="$dir" "$stage/files$dir"
            dir=$(dirname "$dir")
        done
        cp -a "$path" "$stage/files$path"
    done
    [ -z "$RUN_USER" ] || echo "$RUN_USER" >"$stage/control/user"
    {
        local env arg
        for env in "${ENVS[@]}"; do printf 'export %s\n' "$(quote "$env")"; done
        printf 'exec'
        for arg in "$@"; do printf ' %s' "$(quote "$arg")"; done
        printf '\n'
    } >"$stage/control/cmd"
    local kib
    kib=$(du -sk "$stage" | cut -f1)
    mke2fs -q -t ext4 -E root_owner=0:0 -d "$stage" "$WORK/payload.img" "$((kib * 13 / 10 + 32768))k" >/dev/null
    rm -rf "$stage"
}

# Boot the guest on an overlay of the base image (or, when provisioning, on the image being built) and run the
# command; exits with its status.
run_guest() {
    local dir=$1
    shift
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/hull-vm.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    payload_disk "$dir" "$@"
    local disk cache=unsafe
    if [ -n "${PROVISION_DISK:-}" ]; then
        disk=$PROVISION_DISK
        cache=writeback
    else
        disk="$WORK/root.qcow2"
        qemu-img create -q -f qcow2 -b "$BASE" -F qcow2 "$disk"
    fi
    local accel args
    accel=$(accelerator)
    args=(-nodefaults -no-user-config -display none -no-reboot -machine pc -m "$MEM" -smp "$CPUS"
        -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd.img"
        -drive "file=$disk,if=virtio,format=qcow2,cache=$cache"
        -drive "file=$WORK/payload.img,if=virtio,format=raw,cache=unsafe"
        -device virtio-rng-pci
        -chardev "file,id=console,path=$WORK/console.log" -serial chardev:console
        -chardev "file,id=out,path=$WORK/out.fifo" -serial chardev:out)
    if [ "$accel" = kvm ]; then args+=(-accel kvm -cpu host); else args+=(-accel tcg,thread=multi -cpu "$TCG_CPU"); fi
    local append="root=/dev/vda rw console=ttyS0 panic=-1 quiet loglevel=4 systemd.unified_cgroup_hierarchy=1"
    append+=" random.trust_cpu=on mitigations=off hull.vm.run=1"
    local unit
    if [ "$LEAN" = 1 ]; then for unit in $LEAN_UNITS; do append+=" systemd.mask=$unit"; done; fi
    mkfifo "$WORK/out.fifo"
    cat "$WORK/out.fifo" &
    READER_PID=$!
    nice -n 19 qemu-system-x86_64 "${args[@]}" -append "$append" </dev/null >"$WORK/qemu.log" 2>&1 &
    QEMU_PID=$!
    local deadline done_at= timed_out=0
    deadline=$(($(date +%s) + TIMEOUT))
    while kill -0 "$QEMU_PID" 2>/dev/null; do
        sleep 0.5
        if [ "$(date +%s)" -ge "$deadline" ]; then
            timed_out=1
            say "no result within ${TIMEOUT} s: stopping the guest"
            break
        fi
        if [ -z "$done_at" ] && grep -aq 'HULL_VM_EXIT_STATUS=' "$WORK/console.log" 2>/dev/null; then
            done_at=$(date +%s)
        fi
        if [ -n "$done_at" ] && [ $(($(date +%s) - done_at)) -ge "${GRACE:-20}" ]; then break; fi
    done
    kill -KILL "$QEMU_PID" 2>/dev/null || true
    wait "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=
    # Unblock the reader if QEMU never opened the fifo, then let it drain.
    exec 9<>"$WORK/out.fifo"
    exec 9>&-
    wait "$READER_PID" 2>/dev/null || true
    READER_PID=
    local status
    status=$(grep -ao 'HULL_VM_EXIT_STATUS=[0-9]*' "$WORK/console.log" 2>/dev/null | tail -n1 | cut -d= -f2 || true)
    say "$accel guest: $(grep -ao 'command starts at [0-9.]*s' "$WORK/console.log" | head -n1 || echo 'command never started'), $(grep -ao 'command done at [0-9.]*s' "$WORK/console.log" | head -n1 || echo 'not done') of guest uptime"
    if [ "$VERBOSE" = 1 ]; then sed 's/^/vm console: /' "$WORK/console.log" >&2; fi
    if [ "$timed_out" = 1 ]; then
        tail -n 40 "$WORK/console.log" | sed 's/^/vm console: /' >&2
        exit 124
    fi
    if [ -z "$status" ]; then
        say "the guest ended without an exit status; its last console lines:"
        tail -n 40 "$WORK/console.log" 2>/dev/null | sed 's/^/vm console: /' >&2 || true
        sed 's/^/vm qemu: /' "$WORK/qemu.log" >&2 || true
        exit 125
    fi
    exit "$status"
}

run() {
    local opt
    OPTIND=1
    while getopts ':b:e:u:m:c:t:n' opt; do
        case "$opt" in
            b) BINDS+=("$OPTARG") ;;
            e) ENVS+=("$OPTARG") ;;
            u) RUN_USER=$OPTARG ;;
            m) MEM=$OPTARG ;;
            c) CPUS=$OPTARG ;;
            t) TIMEOUT=$OPTARG ;;
            n) LEAN=1 ;;
            *) fail "unknown option -$OPTARG (see the header of $SELF)" ;;
        esac
    done
    shift $((OPTIND - 1))
    [ $# -ge 2 ] || fail "usage: $SELF run [-b HOSTPATH]... [options] DIR CMD..."
    local dir=$1
    shift
    [ -d "$dir" ] || fail "payload directory $dir does not exist"
    setup
    run_guest "$dir" "$@"
}

case "${1:-}" in
    setup) setup ;;
    run) shift; run "$@" ;;
    _customize) customize "$2" ;;
    *) sed -n '2,/^set -euo/p' "$SELF" | sed '$d' >&2; exit 2 ;;
esac
