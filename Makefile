# SPDX-License-Identifier: GPL-2.0
# Entry points of the harness; see README.md.  Every target installs what
# it needs (make deps) and rebuilds only what changed.

BUILD ?= $(CURDIR)/build
KSRC ?=
TOPO ?= switch
CMD ?= true
KASAN ?= 1
export BUILD KASAN

TREE_ARGS = --tree $(BUILD)/linux --repo $(CURDIR) $(if $(KSRC),--ksrc $(KSRC))

.PHONY: all deps config-check tree refresh kernel initramfs vm check series run bench clean

all: check

deps:
	@scripts/deps

tree: deps
	@python3 scripts/tree.py $(TREE_ARGS)

# Which options of a kernel config the series needs (KCONFIG=path; default
# the running kernel's /boot/config-$(uname -r)).
config-check:
	@scripts/config-check $(KCONFIG)

# Edits made in the assembled tree (build/linux) back into patches/ and the
# series' new files; see scripts/refresh.py.
refresh:
	@python3 scripts/refresh.py --tree $(BUILD)/linux --repo $(CURDIR)

kernel: tree
	@scripts/kernel

initramfs: kernel
	@scripts/initramfs

vm: initramfs
	@scripts/vm $(TOPO) "$(CMD)" $(FILES)

series: tree
	@scripts/series

check: initramfs tree
	@scripts/check

run: initramfs
	@scripts/demo

# The benchmark kernel has no debug options: BENCH=1 builds it aside.
bench: tree
	@BENCH=1 scripts/kernel
	@BENCH=1 scripts/initramfs
	@scripts/bench

clean:
	rm -rf $(BUILD) out
