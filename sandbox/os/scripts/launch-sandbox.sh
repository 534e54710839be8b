#!/bin/sh
# Host side of one OS-sandbox launch (run by sandbox/os/sandboxed-process.ts; not for direct use).
#   launch-sandbox.sh <cgroup.procs files, ":"-joined, or "-"> <overlay: lower:upper:work:merged:xattr, or "-">
#                     <scratch folder, or "-"> <read-only workspace: source:target, or "-"> <bwrap arguments...>
# 1. joins the run's control groups before anything else starts, so every descendant is counted;
# 2. with an overlay, a scratch folder or a read-only workspace, re-executes itself in a private
#    mount namespace and mounts them there (the sandbox never holds the privilege to mount, and
#    never sees the layers);
# 3. becomes bubblewrap (same pid: the caller's kill reaches it, --die-with-parent reaches the rest).
# A scratch folder means the run may execute only its granted programs (program-view.ts): every
# place it can write (the scratch tmpfs for /tmp, /run, HOME and /dev/shm, the workspace overlay)
# and the workspace itself are mounted noexec.
set -eu
procs=$1
overlay=$2
scratch=$3
roworkspace=$4
shift 4
if [ "$procs" != - ]; then
  old_ifs=$IFS
  IFS=:
  for file in $procs; do
    echo $$ > "$file" || { echo "warden-sandbox: cannot join control group $file" >&2; exit 125; }
  done
  IFS=$old_ifs
fi
if [ "$overlay" != - ] || [ "$scratch" != - ] || [ "$roworkspace" != - ]; then
  if [ "${WARDEN_SANDBOX_NS:-}" != 1 ]; then
    export WARDEN_SANDBOX_NS=1
    if [ "$(id -u)" = 0 ]; then
      exec unshare --mount --propagation private -- /bin/sh "$0" - "$overlay" "$scratch" "$roworkspace" "$@"
    fi
    exec unshare --user --map-root-user --mount --propagation private -- /bin/sh "$0" - "$overlay" "$scratch" "$roworkspace" "$@"
  fi
fi
noexec=""
if [ "$scratch" != - ]; then
  noexec=",noexec"
  mount -t tmpfs -o nosuid,nodev,noexec,mode=0755 warden-scratch "$scratch" || { echo "warden-sandbox: cannot mount the scratch folder" >&2; exit 125; }
  mkdir -p "$scratch/tmp" "$scratch/run" "$scratch/home/sandbox" "$scratch/shm"
  chmod 1777 "$scratch/tmp" "$scratch/shm"
fi
if [ "$overlay" != - ]; then
  old_ifs=$IFS
  IFS=:
  set -- $overlay "$@"
  IFS=$old_ifs
  lower=$1 upper=$2 work=$3 merged=$4 xattr=$5
  shift 5
  options="lowerdir=$lower,upperdir=$upper,workdir=$work"
  # Mounted by root: no redirects, no metacopy, no index (whiteouts and opaque folders only, which
  # recovery/overlay-layer.ts reads). In a user namespace the kernel picks those itself.
  if [ "$xattr" = user ]; then options="$options,userxattr"; else options="$options,redirect_dir=off,metacopy=off,index=off,xino=off"; fi
  mount -t overlay warden-workspace -o "$options$noexec" "$merged" || { echo "warden-sandbox: cannot mount the workspace overlay" >&2; exit 125; }
fi
if [ "$roworkspace" != - ]; then
  old_ifs=$IFS
  IFS=:
  set -- $roworkspace "$@"
  IFS=$old_ifs
  source=$1 target=$2
  shift 2
  { mount --bind "$source" "$target" && mount -o "remount,bind,ro,nosuid,nodev$noexec" "$target"; } || { echo "warden-sandbox: cannot mount the workspace read-only" >&2; exit 125; }
fi
unset WARDEN_SANDBOX_NS
exec bwrap "$@"
