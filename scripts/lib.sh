# SPDX-License-Identifier: GPL-2.0
# Shared settings of the harness scripts; sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
TREE=$BUILD/linux          # the assembled source tree (a git repository)
# The test kernel has generic KASAN unless KASAN=0; BENCH=1 selects the
# benchmark kernel, without the debug options; MOVE_NOTIFY=1 the test
# KASAN kernel with CONFIG_DMABUF_MOVE_NOTIFY=y, for what depends on
# that option.  Each flavour builds in its own directory, so
# switching costs no rebuild.
FLAVOR=
if [ "${BENCH:-0}" = 1 ]; then
	FLAVOR=-bench
elif [ "${MOVE_NOTIFY:-0}" = 1 ]; then
	FLAVOR=-movenotify
elif [ "${KASAN:-1}" = 1 ]; then
	FLAVOR=-kasan
fi
OBJ=$BUILD/obj$FLAVOR      # kbuild output of the flavour
INITRAMFS=$BUILD/initramfs$FLAVOR.cpio.gz
OUT=$ROOT/out

# Reproducible, cacheable builds: nothing here changes from one run to the next.
export KBUILD_BUILD_TIMESTAMP='Fri Nov 20 12:00:00 UTC 2026'
export KBUILD_BUILD_USER=dmabuf KBUILD_BUILD_HOST=ranges
export CCACHE_BASEDIR=$ROOT CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G} CCACHE_NOHASHDIR=1
JOBS=${JOBS:-$(nproc)}

kmake() {
	make -C "$TREE" O="$1" -j"$JOBS" CC="ccache gcc" HOSTCC="ccache gcc" \
		-s "${@:2}"
}

die() {
	echo "$(basename "$0"): ERROR: $*" >&2
	exit 1
}
