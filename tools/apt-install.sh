#!/bin/sh
# Install the Debian packages given that are not installed yet; a no-op when all are. Package scripts may not start
# services (docker.io and containerd would otherwise start system daemons): a policy-rc.d that denies them is put
# in place for the install when the machine has none.
set -eu
missing=""
for p in "$@"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -n "$missing" ] || exit 0
echo "installing:$missing"
policy=/usr/sbin/policy-rc.d
added=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  added=yes
fi
status=0
apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing || status=$?
[ -z "$added" ] || rm -f "$policy"
exit $status
