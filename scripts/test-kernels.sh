#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make test-kernels: the capture on every kernel the README claims. Boots
# Debian's own 6.1 and 6.12 kernels in qemu (TCG: no /dev/kvm is needed)
# with an initramfs of busybox, shadowd, shadow-dump and their libraries,
# and runs tests/kernels/roundtrip.sh as init in each: shadowd --check,
# then a real capture round trip on the VM's loopback. Then the same on
# the host's kernel, directly. One line per kernel, and a last line
# "kernels: N passed, N failed"; exits 1 if any failed.
#
# KERNELS="pkg ..." picks other Debian kernel packages (linux-image-*);
# the .debs are fetched with apt-get download and only their vmlinuz is
# unpacked, under .output/kernels/; nothing is installed on the host.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=.output/kernels
SHADOWD=${SHADOWD:-./shadowd}
DUMP=${SHADOW_DUMP:-./shadow-dump}
VM_TIMEOUT=${VM_TIMEOUT:-900}

die() { echo "test-kernels: $*" >&2; exit 1; }
for tool in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static \
	    cpio:cpio dpkg-deb:dpkg python3:python3 apt-get:apt; do
	command -v "${tool%%:*}" >/dev/null 2>&1 ||
		die "${tool%%:*} is missing (Debian package ${tool#*:}); run 'make deps'"
done
[ -x "$SHADOWD" ] && [ -x "$DUMP" ] || die "build first: $SHADOWD or $DUMP is missing"
[ "$(id -u)" -eq 0 ] || die "the host's round trip attaches eBPF programs: run as root"
[ "$(uname -m)" = x86_64 ] || die "the VMs are x86-64 (qemu-system-x86_64); this host is $(uname -m)"

if [ -z "${KERNELS:-}" ]; then
	k61=$(apt-cache depends linux-image-amd64 2>/dev/null |
	      awk '/Depends: linux-image-6\.1\./ { print $2; exit }')
	k612=$(apt-cache pkgnames linux-image-6.12 2>/dev/null |
	       grep -E '^linux-image-6\.12\.[0-9]+\+deb12-amd64$' | sort -V | tail -1)
	[ -n "$k61" ] || die "Debian's package lists name no 6.1 kernel (linux-image-amd64); run 'apt-get update'"
	[ -n "$k612" ] || die "Debian's package lists name no 6.12 kernel (linux-image-6.12.*+deb12-amd64); run 'apt-get update'"
	KERNELS="$k61 $k612"
fi

# The vmlinuz of a Debian kernel package, fetched once.
fetch_kernel() {
	local pkg=$1 dir=$OUT/$1 tmp
	[ -s "$dir/vmlinuz" ] && return 0
	tmp=$(mktemp -d "$OUT/fetch-XXXXXX")
	(cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
		{ rm -rf "$tmp"; echo "apt-get download $pkg failed"; return 1; }
	mkdir -p "$tmp/x" "$dir"
	dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$tmp/x" --wildcards './boot/vmlinuz-*' ||
		{ rm -rf "$tmp"; echo "no vmlinuz in $pkg"; return 1; }
	mv "$tmp"/x/boot/vmlinuz-* "$dir/vmlinuz"
	rm -rf "$tmp"
}

# The VM's root: busybox, the two binaries with every library they load,
# and roundtrip.sh as init.
build_initramfs() {
	local root=$OUT/root lib
	rm -rf "$root" && mkdir -p "$root"/{bin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc}
	cp "$(command -v busybox)" "$root/bin/busybox"
	for a in sh mount ip mkdir cat grep sleep kill cmp uname poweroff timeout \
		 wget httpd; do
		ln -s busybox "$root/bin/$a"
	done
	cp "$SHADOWD" "$root/usr/sbin/shadowd"
	cp "$DUMP" "$root/usr/bin/shadow-dump"
	for lib in $(ldd "$SHADOWD" "$DUMP" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }' | sort -u); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
	cp tests/kernels/roundtrip.sh "$root/roundtrip.sh"
	cat > "$root/init" <<'INIT'
#!/bin/sh
export PATH=/bin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
ip link set lo up
sh /roundtrip.sh /usr/sbin/shadowd /usr/bin/shadow-dump /tmp/rt 8080 8081
poweroff -f
INIT
	chmod 755 "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$OUT/initramfs.cpio.gz"
}

mkdir -p "$OUT"
start=$(date +%s)
build_initramfs || die "cannot build the initramfs"
pass=0 fail=0
for pkg in $KERNELS; do
	name=${pkg#linux-image-}
	log=$OUT/$name.log
	if ! why=$(fetch_kernel "$pkg"); then
		echo "kernel $name: FAILED: $why"
		fail=$((fail + 1))
		continue
	fi
	t0=$(date +%s)
	timeout "$VM_TIMEOUT" qemu-system-x86_64 -m 1024 -smp 2 -cpu max -nographic \
		-no-reboot -kernel "$OUT/$pkg/vmlinuz" -initrd "$OUT/initramfs.cpio.gz" \
		-append "console=ttyS0 quiet panic=-1" > "$log" 2>&1 < /dev/null
	rc=$?
	[ $rc -eq 124 ] && echo "=== timeout after ${VM_TIMEOUT}s" >> "$log"
	if python3 tests/kernels/judge.py "$log" "$name"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "  (the VM's output: $log, $(( $(date +%s) - t0 )) s)"
	fi
done

# The host's own kernel, directly.
name="$(uname -r) (host)"
log=$OUT/host.log
w=$(mktemp -d /tmp/shadow-kernels-XXXXXX)
pp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
timeout 300 sh tests/kernels/roundtrip.sh "$SHADOWD" "$DUMP" "$w" "$pp" "$cp" > "$log" 2>&1
rm -rf "$w"
if python3 tests/kernels/judge.py "$log" "$name"; then
	pass=$((pass + 1))
else
	fail=$((fail + 1))
	echo "  (its output: $log)"
fi
echo "kernels: $pass passed, $fail failed ($(( $(date +%s) - start )) s)"
[ "$fail" -eq 0 ]
