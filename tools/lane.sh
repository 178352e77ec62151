#!/bin/sh
# One lane of `make test`, timed: runs the command and prints "lane NAME: N s, ok" (or "failed (exit S)").
#   tools/lane.sh NAME COMMAND...
name=$1
shift
start=$(date +%s)
"$@"
status=$?
if [ "$status" = 0 ]; then result=ok; else result="failed (exit $status)"; fi
echo "lane $name: $(($(date +%s) - start)) s, $result"
exit "$status"
