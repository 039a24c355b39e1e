#!/usr/bin/env bash
# kvm-run.sh: run one command inside a throwaway VM that boots Debian's stock kernel
# (ipip, gre, wireguard, vrf, dummy, ... as modules) with the host's root filesystem
# shared read-only over virtio-9p under a tmpfs overlay; exit with the command's status.
#
#   e2e/lab/kvm-run.sh [options] [--] COMMAND [ARG...]
#
# The command runs as root in the guest, in the caller's current directory, with the
# caller's PATH and HOME (and CI, plus what --env names). Writes land in the guest's
# RAM overlay and vanish at power-off unless made under a --rw directory. The guest
# has no network device at all: nothing it does can leave the machine. Its console
# (the command's stdout and stderr, and kernel errors) is streamed to our stdout.
#
# Options (each also settable by the environment variable in brackets):
#   --rw DIR         share host DIR read-write at the same path (repeatable) [LAB_RW, ':'-separated]
#   --env NAME       pass host variable NAME into the guest (repeatable)   [LAB_ENV, space-separated]
#   --modules "M.."  modules to load before the command ("" for none)      [LAB_MODULES, default "ipip"]
#   --timeout SECS   wall-clock limit for the whole VM                     [LAB_TIMEOUT, default 1200]
#   --mem MIB        guest memory                                          [LAB_MEM, default 2048]
#   --cpus N         guest vCPUs                                           [LAB_CPUS, default nproc, at most 4]
#   --accel A        auto | kvm | tcg                                      [LAB_ACCEL, default auto]
#   --verbose        show all kernel messages                              [LAB_VERBOSE=1]
#   --prepare        only install, download and unpack what is needed; run nothing
# Other environment:
#   LAB_CACHE        where the kernel is unpacked (default ${XDG_CACHE_HOME:-$HOME/.cache}/tabby-lab)
#   LAB_KERNEL_PKG   kernel package (default: the one linux-image-amd64 depends on)
#   LAB_NO_INSTALL=1 never apt-get install missing host tools; fail instead
#   LAB_TIMES=FILE   append the timing line to FILE
#   LAB_QUIET=1      no timing line on stderr
#
# Exit status: the command's own; 124 if the VM hit the timeout; 125 if the lab itself
# failed (no kernel, or the guest stopped before reporting a status).
#
# accel=auto uses KVM only where /dev/kvm is usable and the CPU flags show vmx or svm.
# Where /dev/kvm exists without them (a nested "PVM" host, as on this project's
# machines) KVM cannot run a stock kernel, so TCG (software emulation) is used.
# See ../shared/lab/README.md for the recipe, timings and caveats. This is the project's copy
# of ../shared/lab/kvm-run.sh (unchanged but for these comments), so that CI does not depend
# on a folder outside the repository; e2e/lab/run-ipip.sh drives it.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 125; }

rw_dirs=() pass_env=() prepare_only=0
[[ -n ${LAB_RW:-} ]] && IFS=: read -r -a rw_dirs <<<"$LAB_RW"
[[ -n ${LAB_ENV:-} ]] && read -r -a pass_env <<<"$LAB_ENV"
modules=${LAB_MODULES-ipip}
timeout_s=${LAB_TIMEOUT:-1200}
mem=${LAB_MEM:-2048}
cpus=${LAB_CPUS:-$(nproc)}; (( cpus > 4 )) && cpus=4
accel=${LAB_ACCEL:-auto}
verbose=${LAB_VERBOSE:-0}
while (( $# )); do
  case $1 in
    --rw) rw_dirs+=("$2"); shift 2 ;;
    --env) pass_env+=("$2"); shift 2 ;;
    --modules) modules=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    --accel) accel=$2; shift 2 ;;
    --verbose) verbose=1; shift ;;
    --prepare) prepare_only=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
(( $# || prepare_only )) || die "no command given (see --help)"

# ---- host tools -------------------------------------------------------------------------
# qemu-system-x86 runs the VM, busybox-static makes the initramfs and runs the guest's
# init, kmod gives depmod/modprobe (host and guest), xz unpacks the vmlinux. Everything
# the command runs comes from the host's own filesystem: install test tools on the host.
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
{ [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1; } || need_pkgs+=(busybox-static)
command -v depmod >/dev/null || need_pkgs+=(kmod)
command -v xz >/dev/null || need_pkgs+=(xz-utils)
command -v ip >/dev/null || need_pkgs+=(iproute2)
if (( ${#need_pkgs[@]} )); then
  [[ ${LAB_NO_INSTALL:-0} == 1 ]] && die "missing host packages: ${need_pkgs[*]}"
  (( EUID == 0 )) || die "missing host packages (${need_pkgs[*]}); run as root to install them"
  echo "$prog: installing ${need_pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >&2 ||
    { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >&2; } ||
    die "could not install ${need_pkgs[*]}"
fi

# ---- the guest kernel: Debian's stock image, unpacked (never installed) ----------------------
cache=${LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tabby-lab}
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # one unpacker at a time; released below, or when this script exits

latest_kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1; }
kpkg=${LAB_KERNEL_PKG:-$(latest_kpkg)}
if [[ -z $kpkg ]]; then
  # no apt lists yet, or apt offline: prefer a kernel already unpacked, else update the lists
  kpkg=$(ls -1 "$cache" | grep '^linux-image-[0-9]' | sort -V | tail -n1 || true)
  if [[ -z $kpkg ]] && (( EUID == 0 )) && [[ ${LAB_NO_INSTALL:-0} != 1 ]]; then
    apt-get update -q >&2 || true
    kpkg=$(latest_kpkg)
  fi
fi
[[ -n $kpkg ]] || die "cannot tell which kernel package to use (run apt-get update, or set LAB_KERNEL_PKG)"
kdir=$cache/$kpkg
if [[ ! -e $kdir/.ready ]]; then
  echo "$prog: downloading and unpacking $kpkg into $kdir" >&2
  rm -rf "$kdir" "$kdir.tmp"; mkdir -p "$kdir.tmp/deb"
  ( cd "$kdir.tmp/deb" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" >&2 ) ||
    die "apt-get download $kpkg failed"
  dpkg -x "$kdir.tmp"/deb/*.deb "$kdir.tmp/root" || die "dpkg -x failed"
  rm -rf "$kdir.tmp/deb"
  kv=$(ls -1 "$kdir.tmp/root/lib/modules" | head -n1)
  depmod -b "$kdir.tmp/root" "$kv" || die "depmod failed"  # the .deb ships no modules.dep
  # Under emulation the bzImage's xz decompressor costs seconds at every boot: unpack the
  # ELF vmlinux once and boot it through its PVH entry point (CONFIG_PVH=y in Debian).
  # (xz stops at the end of its stream and tail dies of SIGPIPE: judge by the result.)
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$kdir.tmp/root/boot/vmlinuz-$kv" | head -n1 | cut -d: -f1)
  [[ -n $off ]] && { tail -c +$((off + 1)) "$kdir.tmp/root/boot/vmlinuz-$kv" | xz -dcq --single-stream >"$kdir.tmp/vmlinux" 2>/dev/null || true; }
  [[ -s $kdir.tmp/vmlinux && $(head -c4 "$kdir.tmp/vmlinux" | od -An -c | tr -d ' ') == 177ELF ]] || rm -f "$kdir.tmp/vmlinux"
  mv "$kdir.tmp" "$kdir"
  touch "$kdir/.ready"
fi
kver=$(ls -1 "$kdir/root/lib/modules" | head -n1)
modroot=$kdir/root/lib/modules/$kver
kimg=$kdir/vmlinux
[[ -e $kimg ]] || kimg=$kdir/root/boot/vmlinuz-$kver
[[ -r $kimg && -e $modroot/modules.dep ]] || die "broken kernel unpack in $kdir (remove it and retry)"

# ---- the initramfs: static busybox, the modules that reach the 9p root, and stage 1 --------
initrd_mods="virtio_mmio virtio_pci 9pnet_virtio 9p overlay"
init_src=$(cat <<'EOF'
#!/bin/busybox sh
# stage 1 (PID 1, from the initramfs): mount the host's root read-only over 9p under a
# tmpfs overlay, mount the per-run share, and switch to stage 2 in the new root.
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
fail() { echo "lab-init: $*" >/dev/console; echo b >/proc/sysrq-trigger; sleep 9; }
for m in $(cat /modules.list); do insmod "/m/$m" 2>/dev/null || grep -q "^${m%.ko} " /proc/modules || fail "insmod $m"; done
mkdir -p /lower /upper /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower || fail "mount 9p root"
mount -t tmpfs -o mode=0755 upper /upper && mkdir -p /upper/u /upper/w
mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot || fail "mount overlay"
for d in proc sys dev; do mount --move /$d /newroot/$d; done
mount -t tmpfs -o mode=0755 run /newroot/run && mkdir -p /newroot/run/lab
cp /bin/busybox /newroot/run/lab/busybox
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 labrun "/newroot$labrun" || fail "mount run share"
exec switch_root /newroot /run/lab/busybox sh "$labrun/init2"
EOF
)
initrd=$kdir/initrd-lab.cpio.gz
init_sum=$( { echo "$init_src"; echo "$initrd_mods"; } | md5sum | cut -c1-12)
if [[ ! -e $initrd || $(cat "$initrd.sum" 2>/dev/null) != "$init_sum" ]]; then
  ir=$(mktemp -d)
  mkdir -p "$ir"/{bin,m,proc,sys,dev}
  cp /bin/busybox "$ir/bin/busybox"
  printf '%s\n' "$init_src" >"$ir/init"; chmod +x "$ir/init"
  modprobe -d "$kdir/root" -S "$kver" --show-depends -a $initrd_mods |
    awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r ko; do
      cp "$ko" "$ir/m/"; basename "$ko"; done >"$ir/modules.list"
  ( cd "$ir" && find . | busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1 ) >"$initrd.tmp"
  rm -rf "$ir"
  mv "$initrd.tmp" "$initrd"; echo "$init_sum" >"$initrd.sum"
fi
flock -u 9

if (( prepare_only )); then echo "$prog: ready: $kpkg in $kdir" >&2; exit 0; fi

# ---- accelerator ------------------------------------------------------------------------
if [[ $accel == auto ]]; then
  accel=tcg
  if [[ -r /dev/kvm && -w /dev/kvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then accel=kvm; fi
fi
case $accel in
  kvm) accel_args=(-accel kvm -cpu host) ;;
  tcg) accel_args=(-accel tcg,thread=multi -cpu max) ;;
  *) die "--accel must be auto, kvm or tcg" ;;
esac

# modules to load before the command, as insmod lines resolved here (dependencies first)
insmods=()
if [[ -n ${modules// } ]]; then
  deps=$(modprobe -d "$kdir/root" -S "$kver" --show-depends -a $modules 2>&1) || die "modules: $deps"
  mapfile -t insmods < <(awk '$1 == "insmod" && !seen[$2]++ { print $2 }' <<<"$deps")
fi

# ---- the run directory: shared read-write with the guest; carries command and results -----
run=$(mktemp -d "${TMPDIR:-/tmp}/lab-run.XXXXXX")
[[ $run =~ ^[A-Za-z0-9._/-]+$ ]] || { rm -rf "$run"; die "TMPDIR path has odd characters: $run"; }
qpid=
cleanup() {
  if [[ -n $qpid ]] && kill -0 "$qpid" 2>/dev/null; then kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null || true; fi
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cwd=$(pwd -P)
{
  printf 'cd -- %q || exit 125\n' "$cwd"
  printf 'export PATH=%q HOME=%q TERM=dumb LANG=%q\n' "$PATH" "${HOME:-/root}" "${LANG:-C.UTF-8}"
  for v in CI "${pass_env[@]}"; do
    [[ -n ${!v+x} ]] && printf 'export %s=%q\n' "$v" "${!v}"
  done
  printf 'export LAB_GUEST=1 LAB_KERNEL=%q\n' "$kver"
  printf 'exec'; printf ' %q' "$@"; printf '\n'
} >"$run/cmd"

rw_args=() rw_mounts=
i=0
for d in "${rw_dirs[@]}"; do
  [[ -z $d ]] && continue
  d=$(cd "$d" 2>/dev/null && pwd -P) || die "--rw $d: no such directory"
  [[ $d =~ ^[A-Za-z0-9._/+-]+$ ]] || die "--rw $d: odd characters in path"
  rw_args+=(-fsdev "local,id=rw$i,path=$d,security_model=none,multidevs=remap"
            -device "virtio-9p-device,fsdev=rw$i,mount_tag=rw$i")
  rw_mounts+="\$bb mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 rw$i '$d' || fail 'mount --rw $d'"$'\n'
  i=$((i + 1))
done

# device nodes that load their module on first open (/dev/net/tun, /dev/fuse, ...), as
# systemd would make them from modules.devname ("tun net/tun c10:200")
dev_nodes=$(awk '!/^#/ && NF == 3 { t = substr($3, 1, 1); split(substr($3, 2), mm, ":")
  d = $2; sub("/?[^/]*$", "", d); if (d != "") printf "$bb mkdir -p /dev/%s; ", d
  printf "[ -e /dev/%s ] || $bb mknod -m 0600 /dev/%s %s %s %s\n", $2, $2, t, mm[1], mm[2] }' "$modroot/modules.devname")

# stage 2: PID 1 in the new root, still static busybox (each dynamic exec costs ~60 ms
# under emulation); the command itself runs under the host's bash.
cat >"$run/init2" <<EOF
bb=/run/lab/busybox
read -r up _ </proc/uptime; echo "\$up" >$run/t_stage2
fail() { echo "lab-init: \$*" >/dev/console; }
\$bb mkdir -p /dev/pts /dev/shm /run/lock /run/netns /lib/modules/$kver
\$bb mount -t devpts -o ptmxmode=0666 devpts /dev/pts
\$bb mount -t tmpfs -o mode=1777 shm /dev/shm
\$bb mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
\$bb mount -o bind '$modroot' /lib/modules/$kver || fail "bind /lib/modules"
$dev_nodes
$rw_mounts
\$bb hostname lab-guest
\$bb ip link set lo up
\$bb stty -F /dev/console -onlcr 2>/dev/null
for ko in ${insmods[*]}; do
  \$bb insmod "\$ko" 2>/dev/null || \$bb grep -q "^\$(\$bb basename "\$ko" .ko | \$bb tr - _) " /proc/modules || fail "insmod \$ko"
done
read -r up _ </proc/uptime; echo "\$up" >$run/t_ready
/bin/bash $run/cmd </dev/null
echo \$? >$run/rc.tmp
read -r up _ </proc/uptime; echo "\$up" >$run/t_done
\$bb mv $run/rc.tmp $run/rc
\$bb sync
# leave at once through the isa-debug-exit port; ACPI power-off if that fails
\$bb printf '\\000' | \$bb dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
echo o >/proc/sysrq-trigger
\$bb sleep 30
EOF

quiet="quiet loglevel=3"
(( verbose )) && quiet=
# nowatchdog / rcu stall suppression: an emulated guest on a loaded host is slow, not hung
append="console=ttyS0 $quiet panic=-1 oops=panic labrun=$run mitigations=off tsc=reliable"
append+=" init_on_alloc=0 nowatchdog rcupdate.rcu_cpu_stall_suppress=1 random.trust_cpu=on"
# Under TCG the guest's TSC is the host's. microvm has no HPET or PM timer, so when the
# PIT calibration misses (it does when the host is busy) the guest would mark its TSC
# unstable and hang at boot: give it the host's TSC rate instead of calibrating.
if [[ $accel == tcg ]] && grep -qw constant_tsc /proc/cpuinfo; then
  khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
  [[ -n $khz && $khz -gt 100000 ]] && append+=" tsc_early_khz=$khz"
fi

t0=$(date +%s.%N)
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
  -machine microvm,rtc=on "${accel_args[@]}" -smp "$cpus" -m "$mem" \
  -nodefaults -no-user-config -no-reboot -display none -nic none \
  -chardev stdio,id=con,signal=off -serial chardev:con \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
  -kernel "$kimg" -initrd "$initrd" -append "$append" \
  -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap" \
  -device virtio-9p-device,fsdev=hostroot,mount_tag=hostroot \
  -fsdev "local,id=labrun,path=$run,security_model=none" \
  -device virtio-9p-device,fsdev=labrun,mount_tag=labrun \
  "${rw_args[@]}" </dev/null &
qpid=$!
set +e
wait "$qpid"; qrc=$?
set -e
qpid=
t1=$(date +%s.%N)

if [[ -r $run/rc ]]; then
  rc=$(cat "$run/rc")
  msg=$(awk -v t0="$t0" -v t1="$t1" -v s="$(cat "$run/t_stage2")" -v r="$(cat "$run/t_ready")" -v d="$(cat "$run/t_done")" \
    'BEGIN { printf "boot %.1fs (kernel+initramfs %.1fs, setup %.1fs), command %.1fs, VM wall total %.1fs", r, s, r - s, d - r, t1 - t0 }')
  [[ ${LAB_QUIET:-0} == 1 ]] || echo "$prog: $accel $kver: $msg, rc=$rc" >&2
  [[ -z ${LAB_TIMES:-} ]] || echo "$accel $kver: $msg, rc=$rc" >>"$LAB_TIMES"
  exit "$rc"
fi
(( qrc == 124 || qrc == 137 )) && { echo "$prog: VM timed out after ${timeout_s}s" >&2; exit 124; }
die "the guest stopped without reporting an exit status (qemu rc=$qrc)"
