#!/bin/sh
# First process inside the sandbox (run by bubblewrap; not for direct use).
#   sandbox-init.sh <cwd> <proxy: 0|1> <prlimit options...> -- <program> <arguments...>
# Starts the loopback side of the egress proxy when hosts are granted, enters the working
# folder, and becomes the program under the run's rlimits (set here, inside the sandbox's user
# namespace, so that RLIMIT_NPROC counts only the sandbox's own processes).
set -eu
cwd=$1
proxy=$2
shift 2
limits=""
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
  limits="$limits $1"
  shift
done
[ "$#" -gt 0 ] && shift
if [ "$proxy" = 1 ]; then
  node /run/warden/egress-forwarder.cjs /run/warden/egress.sock 3128 /tmp/.warden-forwarder-ready &
  tries=0
  while [ ! -e /tmp/.warden-forwarder-ready ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 1000 ]; then echo "warden-sandbox: the egress forwarder did not start" >&2; exit 125; fi
    sleep 0.01
  done
fi
cd "$cwd" 2>/dev/null || { echo "warden-sandbox: no such folder: $cwd" >&2; exit 125; }
# shellcheck disable=SC2086
exec prlimit $limits -- "$@"
