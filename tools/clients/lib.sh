# Shared by the client scenarios (sourced by tools/test-clients.sh): reporting, timeouts and leftover checks.
# A scenario line is "ok   ENGINE/RUNTIME NAME" or "FAIL ENGINE/RUNTIME NAME: expected ..., saw ...".

passed=0
failed=0
failures=()

# expect NAME PATTERN SEEN: SEEN must match the bash glob PATTERN (plain text matches itself).
expect() {
  local name=$1 pattern=$2 seen=$3 line
  # shellcheck disable=SC2053
  if [[ $seen == $pattern ]]; then
    line=$(printf 'ok   %s %s' "$label" "$name")
  else
    line=$(printf 'FAIL %s %s: expected %q, saw %q' "$label" "$name" "$pattern" "$seen")
  fi
  tally "$line"
}

# tally LINE: print a scenario line (ours or the CRI client's) and count it.
tally() {
  printf '%s\n' "$1"
  case $1 in
    'ok   '*) passed=$((passed + 1)) ;;
    'FAIL '*)
      failed=$((failed + 1))
      failures+=("$(cut -d: -f1 <<<"${1#FAIL }")")
      ;;
  esac
}

# out CMD...: the command's stdout and stderr, then "rc=N"; killed after $step_timeout seconds.
out() {
  local text rc
  text=$(timeout -k 5 "${step_timeout:-60}" "$@" 2>&1)
  rc=$?
  if [[ -n $text ]]; then
    printf '%s\nrc=%s' "$text" "$rc"
  else
    printf 'rc=%s' "$rc"
  fi
}

# in_tty CMD...: run the command with a pseudo-terminal as its stdin/stdout (util-linux script).
in_tty() {
  local quoted
  printf -v quoted '%q ' "$@"
  timeout -k 5 "${step_timeout:-60}" script -qec "$quoted" /dev/null </dev/null | tr -d '\r\0'
}

# leftovers ROOT NEEDLE...: nothing remains of the containers whose ids (or paths) contain a NEEDLE: no state under
# the runtime's ROOT, no cgroup directory, no mount, no process.
leftovers() {
  local root=$1 needle found=""
  shift
  for needle in "$@"; do
    [[ -n $needle ]] || continue
    found+=$(find "$root" -mindepth 1 -maxdepth 2 -name "*$needle*" -printf 'state:%p ' 2>/dev/null)
    found+=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 4 -type d -name "*$needle*" -printf 'cgroup:%p ' 2>/dev/null)
    found+=$(awk -v n="$needle" 'index($5, n) {printf "mount:%s ", $5}' /proc/self/mountinfo)
    found+=$(pgrep -af -- "$needle" | grep -v -e pgrep -e test-clients | awk '{printf "process:%s ", $0}')
  done
  printf '%s' "${found% }"
}

# stop_pid PIDFILE: stop a daemon this script started, SIGTERM then SIGKILL after 15 s.
stop_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null
}

# wait_for WHAT SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  for _ in $(seq $((seconds * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "timed out after ${seconds}s waiting for $what" >&2
  return 1
}

# cgroup_value DIR_V1_CONTROLLER FILE_V1 FILE_V2 CGROUP_PATH: a limit as the host's cgroup files show it.
cgroup_value() {
  local controller=$1 v1=$2 v2=$3 path=$4
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    cat "/sys/fs/cgroup$path/$v2" 2>&1
  else
    cat "/sys/fs/cgroup/$controller$path/$v1" 2>&1
  fi
}
