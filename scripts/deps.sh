#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Installs the Debian packages request-shadow needs: `deps.sh build` those
# to build it (plain make), `deps.sh all` (the default) those to test it,
# run its demo and its benchmarks as well. Idempotent and near-instant
# when everything is present.
set -euo pipefail

set_name=${1:-all}
case $set_name in
build | all) ;;
*) echo "usage: scripts/deps.sh [build|all]" >&2; exit 2 ;;
esac

pkgs=(
	# build
	make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config
	libcurl4-openssl-dev libhttp-parser-dev libjansson-dev libsqlite3-dev
	libbrotli-dev libzstd-dev libxxhash-dev libmicrohttpd-dev libcap-dev
)
[ "$set_name" = all ] && pkgs+=(
	# tests, fuzzing, demo and benchmarks
	libcriterion-dev libclang-rt-14-dev nginx wrk curl python3 sqlite3
	openssl procps iproute2 bc util-linux
	# make bench: open-loop load
	httperf tcpdump
	# make test-kernels: Debian's kernels in qemu, an initramfs of busybox
	qemu-system-x86 busybox-static cpio
)
# node's http module serves in the tests; any node >= 12 will do, so an
# existing one (e.g. from NodeSource) is kept.
[ "$set_name" = all ] && ! command -v node >/dev/null 2>&1 && pkgs+=(nodejs)

missing=()
status=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${pkgs[@]}" 2>/dev/null || true)
for p in "${pkgs[@]}"; do
	grep -qE "^$p ii" <<<"$status" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages (${missing[*]}); run 'sudo make deps' or install them" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Update the package lists once, unless they are fresh (< 1 day).
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
	apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
