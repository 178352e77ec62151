#!/bin/bash
# Runs inside the guest of tools/vm.sh (make test-host): each engine at its Debian defaults, which on this systemd +
# cgroup v2 host means the systemd cgroup driver, runs busybox through hull and through runc (the reference). One
# line per scenario; at the end, a check that no container, unit, scope or runtime process is left. The CRI path runs
# the scenarios of tools/clients/cri/cri.py (a kubelet stand-in; DIR/cri holds it) against the guest's containerd,
# whose runtime handlers `runc` and `hull` have `SystemdCgroup = true` (tools/vm.sh configures them).
#   tools/vm.sh run -b HULL DIR bash host-engines.sh HULL      (hull is installed as /usr/local/bin/hull)
set -u
install -m 0755 "$1" /usr/local/bin/hull
passed=0
failed=0
check() { # check NAME EXPECTED COMMAND...: the command's output must contain EXPECTED
    local name=$1 expected=$2 out status
    shift 2
    out=$("$@" 2>&1)
    status=$?
    if [ "$status" = 0 ] && grep -qF -- "$expected" <<<"$out"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name: expected exit 0 and output containing \"$expected\", got exit $status: $(tr '\n' ' ' <<<"$out" | cut -c1-600)"
        failed=$((failed + 1))
    fi
}
as_user() { # the rootless user's login environment, with its systemd --user instance's bus
    su -l user -c "export XDG_RUNTIME_DIR=/run/user/1000 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus; $*"
}
check "docker info: cgroup driver systemd, version 2" "systemd 2" docker info --format '{{.CgroupDriver}} {{.CgroupVersion}}'
check "podman info: cgroup manager systemd" "systemd" podman info --format '{{.Host.CgroupManager}}'
for runtime in hull runc; do
    path=/usr/local/bin/hull
    [ "$runtime" = runc ] && path=/usr/bin/runc
    check "podman root/$runtime: run" "hello" podman --runtime "$path" run --rm busybox echo hello
    check "podman root/$runtime: unit in machine.slice" "machine.slice/libpod-" \
        podman --runtime "$path" run --rm --cgroupns host busybox cat /proc/1/cgroup
    check "podman root/$runtime: detached, exec, stop, rm" "in-exec" sh -c "
        id=\$(podman --runtime $path run -d busybox sleep 600) &&
        podman --runtime $path exec \$id echo in-exec &&
        podman --runtime $path stop -t 0 \$id >/dev/null && podman --runtime $path rm \$id >/dev/null"
    check "podman rootless/$runtime: run" "hello" as_user podman --runtime "$path" run --rm busybox echo hello
    check "podman rootless/$runtime: detached, exec, stop, rm" "in-exec" as_user "
        id=\$(podman --runtime $path run -d busybox sleep 600) &&
        podman --runtime $path exec \$id echo in-exec &&
        podman --runtime $path stop -t 0 \$id >/dev/null && podman --runtime $path rm \$id >/dev/null"
    check "docker/$runtime: run" "hello" docker run --rm --runtime "$runtime" busybox echo hello
    check "docker/$runtime: unit in system.slice" "system.slice/docker-" \
        docker run --rm --runtime "$runtime" --cgroupns host busybox cat /proc/1/cgroup
    check "ctr/$runtime: run with the systemd cgroup option" "hello" ctr run --rm --runc-binary "$path" \
        --runc-systemd-cgroup --cgroup "system.slice:ctr:c-$runtime" docker.io/library/busybox:latest "c-$runtime" echo hello
done
cri_scenarios() { # cri_scenarios HANDLER: cri.py's lines, each one scenario (a client that dies fails too)
    local handler=$1 line out
    out=$(python3 cri/cri.py --socket /run/containerd/containerd.sock --handler "$handler" \
        --image docker.io/library/busybox:latest --work "/tmp/cri-$handler" --label "cri/$handler" --systemd-cgroup 2>&1
        echo "rc=$?")
    while IFS= read -r line; do
        case $line in
            "ok   "*) echo "$line"; passed=$((passed + 1)) ;;
            "FAIL "*) echo "$line"; failed=$((failed + 1)) ;;
        esac
    done <<<"$out"
    if [ "${out##*rc=}" != 0 ] && ! grep -q '^FAIL ' <<<"$out"; then
        echo "FAIL cri/$handler: the client failed without a scenario line: $(tr '\n' ' ' <<<"$out" | cut -c1-600)"
        failed=$((failed + 1))
    fi
}
for handler in hull runc; do
    cri_scenarios "$handler"
done
leftovers=$( {
    podman ps -aq
    as_user podman ps -aq
    docker ps -aq
    ctr containers ls -q
    ctr -n k8s.io containers ls -q
    systemctl list-units --all --no-legend --plain | awk '{print $1}' | grep -E '^(libpod|docker|ctr|hull|cri-containerd)-.*\.scope$|^kubepods-besteffort-pod.*\.slice$'
    as_user systemctl --user list-units --all --no-legend --plain | awk '{print $1}' | grep -E '^(libpod|hull)-.*\.scope$'
    pgrep -a -x 'hull|runc|conmon' | grep -v containerd-shim
    find /sys/fs/cgroup -type d -regextype egrep -regex '.*/(libpod|docker|ctr|hull|cri-containerd)-[^/]*\.scope'
    # Container root filesystems still mounted (rootless podman's live in its own mount namespace, gone with it).
    awk '$5 ~ /^\/run\/containerd\/io\.containerd\.runtime\.v2\.task\/|\/merged$/ {print "mount " $5}' /proc/self/mountinfo
} 2>/dev/null)
if [ -z "$leftovers" ]; then
    echo "ok   no container, unit, scope, cgroup, mount or runtime process left"
    passed=$((passed + 1))
else
    echo "FAIL leftovers: $(tr '\n' ' ' <<<"$leftovers")"
    failed=$((failed + 1))
fi
echo "engines: $passed passed, $failed failed"
[ "$failed" = 0 ]
