#!/bin/bash
# Real engines run containers through hull: containerd (ctr and its CRI plugin), podman and docker, each a private
# instance started and stopped here by PID, images built locally from the busybox rootfs. Every scenario runs
# against hull and then against runc, so a failure seen with both is the harness's, one seen only with hull is
# hull's. Prints one line per scenario and a summary; exits non-zero when any scenario failed.
#   tools/test-clients.sh HULL_BINARY ROOTFS_WITH_CHECKER [ENGINE...]    (engines: containerd cri podman docker)
set -u
hull=$(realpath "${1:?usage: test-clients.sh HULL ROOTFS [ENGINE...]}")
rootfs=$(realpath "${2:?usage: test-clients.sh HULL ROOTFS [ENGINE...]}")
shift 2
engines=("$@")
[[ ${#engines[@]} -gt 0 ]] || engines=(containerd cri podman docker)
here=$(dirname "$(realpath "$0")")/clients
# Short and private: unix socket paths must stay under 108 bytes.
work=/run/hull-clients
images=$work/images
busybox_image=registry.local/hull/busybox:1
pause_image=registry.local/hull/pause:1
step_timeout=60
runtimes=("hull:$hull" "runc:$(command -v runc)")

# shellcheck source=clients/lib.sh
source "$here/lib.sh"
for engine in "${engines[@]}"; do
  # shellcheck disable=SC1090
  source "$here/$engine.sh" 2>/dev/null || [[ $engine == cri ]] || { echo "unknown engine $engine" >&2; exit 2; }
done

cleanup() {
  for engine in docker podman containerd; do
    declare -F "${engine}_stop" >/dev/null && "${engine}_stop"
  done
}
trap cleanup EXIT

rm -rf "$work"
mkdir -p "$images"
# /run/lock/from-image lets podman's --read-only show that its tmpfs on /run starts with the image's files.
"$here/mkimage.py" "$rootfs" "$busybox_image" "$images/busybox.tar" --cmd sh \
  --file /run/lock/from-image=copied-up || exit 1
"$here/mkimage.py" "$rootfs" "$pause_image" "$images/pause.tar" --cmd sleep --cmd 2147483647 || exit 1

started=$(date +%s)
for engine in "${engines[@]}"; do
  engine_started=$(date +%s)
  case $engine in
    containerd | cri)
      if ! declare -F containerd_start >/dev/null; then source "$here/containerd.sh"; fi
      if [[ ! -e $ctd_dir/pid ]]; then
        containerd_start || { label=containerd/all; expect daemon-start 'started' 'failed (see above)'; continue; }
      fi
      ;;
    *) "${engine}_start" || { label=$engine/all; expect daemon-start 'started' 'failed (see above)'; continue; } ;;
  esac
  for runtime in "${runtimes[@]}"; do
    name=${runtime%%:*} binary=${runtime#*:}
    case $engine in
      cri) cri_scenarios "$name" ;;
      *) "${engine}_scenarios" "$name" "$binary" ;;
    esac
  done
  echo "# $engine: $(($(date +%s) - engine_started)) s"
done
cleanup
trap - EXIT
# With every daemon stopped, none of their mounts may remain; the engines' empty parent cgroups are removed.
label=all
expect no-mounts-left '' "$(awk -v w="$work" 'index($5, w) == 1 {printf "%s ", $5}' /proc/self/mountinfo)"
for parent in libpod_parent/conmon libpod_parent docker hull-clients hull-cri-hull hull-cri-runc; do
  for hierarchy in /sys/fs/cgroup /sys/fs/cgroup/*/; do
    [[ -d $hierarchy/$parent ]] && rmdir "$hierarchy/$parent" 2>/dev/null
  done
done

echo "# clients: $passed passed, $failed failed in $(($(date +%s) - started)) s"
for f in "${failures[@]}"; do echo "#   failed: $f"; done
[[ $failed -eq 0 ]]
