#!/usr/bin/env bash
# Runs a command inside a throwaway QEMU VM that has a working /dev/kvm, for hosts without KVM
# (such as VMs without nested virtualization). QEMU emulates the CPU in software, AMD SVM
# included, so Debian's own kernel loads kvm_amd inside it. The host's root filesystem is shared
# into the VM over 9p and the command runs chrooted there, in the current directory, with
# TMPDIR and XDG_RUNTIME_DIR on a tmpfs of the VM's own. Slow (software emulation), but real KVM.
# Several may run at once: each VM reads its own command file, named on its kernel command line.
# Its kernel is told the TSC is reliable (QEMU derives it from the host's clock): a loaded host
# can make the clocksource watchdog mark it unstable mid-run, and KVM then handles guest TSCs
# differently. The suspected cause of one CI run where swapped-in guests' clocks lagged (timers
# fired 16-30 ms early, idles looked too short to swap out); the VM reports such messages.
#
# Usage: tests/vm/kvm-vm.sh COMMAND [ARG...]     exit status: the command's
#        tests/vm/kvm-vm.sh --setup              only the one-time setup (test.sh runs it first)
# Env:   DENALI_VM_CACHE (default /var/cache/denali-kvm-vm), DENALI_VM_MEM (MiB, default 4096),
#        DENALI_VM_CPUS (default 1: with more, QEMU's emulation of nested SVM can lock up), DENALI_VM_TIMEOUT (seconds, default 1800),
#        DENALI_USER (passed into the VM; default root, see below)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARG...] | --setup" >&2; exit 2; }
cache=${DENALI_VM_CACHE:-/var/cache/denali-kvm-vm}
mem=${DENALI_VM_MEM:-4096}
cpus=${DENALI_VM_CPUS:-1}
limit=${DENALI_VM_TIMEOUT:-1800}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# The one-time setup: QEMU, busybox and cpio installed, the kernel fetched, the initramfs built.
# Under a lock on the cache folder, so that two VMs started at once on a fresh machine do it
# once (the second waits, then finds it done); apt-install.sh waits for apt's own locks.
setup() {
	"$here/../../scripts/apt-install.sh" qemu-system-x86 busybox-static cpio
	command -v qemu-system-x86_64 >/dev/null || { echo "kvm-vm: qemu-system-x86_64 is missing after install" >&2; exit 125; }
	# The list taken whole first: `grep -q` stops reading at its match, and under pipefail
	# busybox's SIGPIPE would then fail the check though insmod is there.
	applets=$(/bin/busybox --list)
	grep -qx insmod <<<"$applets" || { echo "kvm-vm: /bin/busybox has no insmod (busybox-static is needed)" >&2; exit 125; }
	# Debian's current kernel, unpacked once into the cache (as root, apt's sandbox user could
	# not write there).
	as_root=()
	[ -z "$sudo" ] && as_root=(-o APT::Sandbox::User=root)
	if [ ! -f "$cache/vmlinuz" ]; then
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
		[ -n "$pkg" ] || { "$here/../../scripts/apt-install.sh" --update; pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); }
		(cd "$cache" && rm -rf kpkg ./*.deb && apt-get download -q "${as_root[@]}" "$pkg" >/dev/null && dpkg-deb -x ./*.deb kpkg && rm -f ./*.deb)
		cp "$cache"/kpkg/boot/vmlinuz-* "$cache/vmlinuz"
	fi

	# The initramfs: busybox, the KVM and 9p modules (in load order), and the init script below.
	# Named for this script's hash, so that a change here builds a new one.
	initrd="$cache/initrd-$(sha256sum "$0" | cut -c1-12).gz"
	if [ ! -f "$initrd" ]; then
		# Others' are kept a day: a VM of another checkout may be about to boot with its own.
		find "$cache" -maxdepth 1 -name 'initrd-*.gz' -mtime +1 -delete
		kmod=$(echo "$cache"/kpkg/lib/modules/*/kernel)
		root=$(mktemp -d)
		mkdir -p "$root"/{bin,lib,proc,sys,dev,host}
		cp /bin/busybox "$root/bin/busybox"
		for a in sh mount insmod cat echo sleep poweroff reboot chroot mkdir grep ip dmesg sed; do ln -s busybox "$root/bin/$a"; done
		n=0
		for m in virt/lib/irqbypass drivers/crypto/ccp/ccp arch/x86/kvm/kvm arch/x86/kvm/kvm-amd \
			drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev \
			drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci fs/netfs/netfs \
			fs/fscache/fscache net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p drivers/net/tun; do
			[ -f "$kmod/$m.ko" ] || continue
			cp "$kmod/$m.ko" "$root/lib/$(printf %02d $n)-$(basename "$m").ko"
			n=$((n + 1))
		done
		cat > "$root/init" <<-'INIT'
	#!/bin/sh
	export PATH=/bin
	mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
	for m in /lib/*.ko; do insmod "$m" || echo "kvm-vm: insmod $m failed"; done
	ip link set lo up # the user uplink reaches the host at 127.0.0.1
	if [ ! -c /dev/kvm ]; then echo "kvm-vm: /dev/kvm did not appear"; echo "DENALI-VM-EXIT=125"; poweroff -f; fi
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose hostroot /host || { echo "DENALI-VM-EXIT=125"; poweroff -f; }
	mount --bind /dev /host/dev; mount -t proc proc /host/proc; mount -t sysfs sys /host/sys
	mount -t tmpfs run /host/run; mkdir -p /host/run/denali-vm/tmp /host/run/denali-vm/xdg
	mkdir -p /host/dev/pts /host/dev/shm; mount -t devpts devpts /host/dev/pts; mount -t tmpfs shm /host/dev/shm
	cmd=""
	for w in $(cat /proc/cmdline); do case "$w" in denali_cmd=*) cmd="${w#denali_cmd=}";; esac; done
	echo "DENALI-VM-START"
	chroot /host /bin/bash "$cmd"
	rc=$?
	# A clock the VM's kernel gave up on skews guest time under KVM: say so beside any failure.
	dmesg | grep -i -E "clocksource.*unstable|tsc.*unstable" | sed 's/^/kvm-vm: the VM kernel said: /'
	echo "DENALI-VM-EXIT=$rc"
	poweroff -f
	INIT
		chmod +x "$root/init"
		(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$initrd"
		rm -rf "$root"
	fi
}

here=$(cd "$(dirname "$0")" && pwd)
$sudo mkdir -p "$cache"
$sudo chown "$(id -u)" "$cache"
exec 9<"$cache"
flock 9
setup
flock -u 9
exec 9<&-
[ "$1" = --setup ] && exit 0

# The command, run in this directory with this environment's essentials.
cmd=$(mktemp "$cache/cmd-XXXXXX.sh")
log=$(mktemp)
trap 'rm -f "$cmd" "$log"' EXIT
{
	echo "export PATH=$(printf %q "$PATH") HOME=$(printf %q "${HOME:-/root}") LANG=C.UTF-8 CI=${CI:-}"
	echo "export DENALI_IN_KVM_VM=1 TMPDIR=/run/denali-vm/tmp XDG_RUNTIME_DIR=/run/denali-vm/xdg"
	# The command runs as root, on the host's files: a fleet keeps uid 0 without capabilities
	# (docs/security.md#rights) unless DENALI_USER says otherwise (DENALI_USER= for the default,
	# the system user denali), so that benchmarks' state in root's temporary folders is reachable.
	echo "export DENALI_USER=$(printf %q "${DENALI_USER-root}")"
	echo "cd $(printf %q "$PWD") || exit 125"
	printf 'exec'; printf ' %q' "$@"; echo
} > "$cmd"

# QEMU runs in the background so that this script can end it on any exit; its console is
# followed from the log, showing only what the command printed.
timeout "$limit" qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -cpu "${DENALI_VM_CPU_MODEL:-qemu64,+svm}" \
	-smp "$cpus" -m "$mem" -nographic -no-reboot -kernel "$cache/vmlinuz" -initrd "$initrd" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 tsc=reliable denali_cmd=$cmd" -vga none \
	-virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,multidevs=remap,id=hostroot \
	</dev/null >"$log" 2>&1 &
qemu=$!
trap 'kill $qemu 2>/dev/null || true; rm -f "$cmd" "$log"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
tail -n +1 -f --pid=$qemu "$log" | sed -u -n '/DENALI-VM-START/,$p' |
	grep --line-buffered -v -E 'DENALI-VM-(START|EXIT=)|reboot: Power down' || true
wait $qemu || true
rc=$(sed -n 's/.*DENALI-VM-EXIT=\([0-9]*\).*/\1/p' "$log" | tail -n 1)
if [ -z "$rc" ]; then
	echo "kvm-vm: the VM ended without a result" >&2
	exit 125
fi
exit "$rc"
