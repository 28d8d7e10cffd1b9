// SPDX-License-Identifier: GPL-2.0
/*
 * make run: export a slice of ivshmem's BAR 2 through vfio-pci as a dma-buf,
 * import it for edu, DMA a pattern into it peer-to-peer, check it through
 * the vfio mmap, then revoke by reset, memory disable and close, printing
 * each step.
 */
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include "vfio_util.h"

static int step;

#define say(...) do { printf("[%d] ", ++step); printf(__VA_ARGS__); \
		      printf("\n"); fflush(stdout); } while (0)
#define die(...) do { printf("FAILED: "); printf(__VA_ARGS__); \
		      printf(" (%s)\n", strerror(errno)); exit(1); } while (0)

static sigjmp_buf jmp;

static void on_sigbus(int sig)
{
	siglongjmp(jmp, 1);
}

static const char *cpu_access(volatile uint8_t *p)
{
	signal(SIGBUS, on_sigbus);
	if (sigsetjmp(jmp, 1))
		return "SIGBUS";
	(void)*p;
	return "ok";
}

static void show_mapping(int imp, const char *how)
{
	struct imp_range r[4];
	uint32_t nr = 4, i;
	int ret = imp_map(imp, IMP_API_RANGES, 0, r, &nr);

	if (ret) {
		say("%s: dma_buf_map_ranges() -> %s", how, strerror(-ret));
		return;
	}
	printf("[%d] %s: dma_buf_map_ranges() for edu ->", ++step, how);
	for (i = 0; i < nr; i++)
		printf(" %#llx+%#llx", (unsigned long long)r[i].addr,
		       (unsigned long long)r[i].len);
	printf("\n");
}

int main(void)
{
	struct vfio_region_dma_range slices[2] = {
		{ SZ_1M, SZ_1M }, { 0, 128 * 1024 },
	};
	uint8_t want[2048], got[2048], *region, *cpu;
	struct imp_status st;
	struct vdev v;
	char line[256];
	int dmabuf, imp, ret;

	if (vfio_open(&v))
		die("opening ivshmem through vfio-pci");
	say("ivshmem %s bound to vfio-pci; BAR 2 is %llu MiB at %#llx (topology: %s)",
	    v.bdf, (unsigned long long)v.bar_size >> 20,
	    (unsigned long long)v.bar_phys, topo());

	dmabuf = export_ranges(v.device, VFIO_PCI_BAR2_REGION_INDEX,
			       O_RDWR | O_CLOEXEC, 0, 2, slices, 2);
	if (dmabuf < 0)
		die("VFIO_DEVICE_FEATURE_DMA_BUF");
	say("VFIO_DEVICE_FEATURE_DMA_BUF: BAR 2 slices 1 MiB@1 MiB + 128 KiB@0 -> dma-buf fd %d",
	    dmabuf);
	snprintf(line, sizeof(line), "grep vfio /proc/%d/fdinfo/%d | tr '\\n' ' '",
		 getpid(), dmabuf);
	printf("    fdinfo: ");
	fflush(stdout);
	if (system(line))
		printf("(none)");
	printf("\n");

	imp = open_importer();
	if (imp < 0)
		die("opening the test importer /dev/dmabuf_importer");
	ret = imp_attach(imp, dmabuf, IMP_DYNAMIC | IMP_P2P | IMP_REVOCABLE);
	if (ret) {
		say("edu attach -> %s: no P2P path between edu and ivshmem here",
		    strerror(-ret));
		return 0;
	}
	say("edu (the test importer's DMA engine) attached with allow_peer2peer and allow_revoke");
	show_mapping(imp, "mapped");

	region = mmap(NULL, 2 * SZ_1M, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v.device, v.bar_off);
	if (region == MAP_FAILED)
		die("mmap of the vfio region");
	fill(want, sizeof(want), 7);
	if (imp_dma(imp, 4096, want, sizeof(want), 1))
		die("edu DMA into the dma-buf");
	say("edu DMA wrote 2048 pattern bytes at dma-buf offset 4 KiB; vfio mmap at BAR offset 1 MiB + 4 KiB: %s",
	    memcmp(region + SZ_1M + 4096, want, sizeof(want)) ? "MISMATCH" : "match");
	fill(want, sizeof(want), 8);
	memcpy(region + 4096, want, sizeof(want));
	if (imp_dma(imp, SZ_1M + 4096, got, sizeof(got), 0))
		die("edu DMA out of the dma-buf");
	say("CPU wrote a pattern at BAR offset 4 KiB; edu DMA read it at dma-buf offset 1 MiB + 4 KiB: %s",
	    memcmp(got, want, sizeof(want)) ? "MISMATCH" : "match");

	cpu = mmap(NULL, 4096, PROT_READ, MAP_SHARED, dmabuf, 0);
	if (cpu == MAP_FAILED)
		die("mmap of the dma-buf");

	if (v.flags & VFIO_DEVICE_FLAGS_RESET) {
		ret = ioctl(v.device, VFIO_DEVICE_RESET);
		st = imp_status(imp);
		say("VFIO_DEVICE_RESET -> %d: importer got %u move_notify (revoke, then restore); mapping held: %s",
		    ret, st.moves, st.mapped ? "yes" : "no");
		show_mapping(imp, "after reset");
		ioctl(imp, IMP_UNMAP);
	}

	set_memory_decode(&v, 0);
	st = imp_status(imp);
	say("memory decode off: move_notify count %u; mapping held: %s; CPU read of the dma-buf: %s",
	    st.moves, st.mapped ? "yes" : "no", cpu_access(cpu));
	show_mapping(imp, "while revoked");
	ret = imp_dma(imp, 0, want, 64, 1);
	say("edu DMA while revoked -> %s (no DMA issued)", strerror(-ret));
	set_memory_decode(&v, 1);
	say("memory decode on: CPU read of the dma-buf: %s", cpu_access(cpu));
	show_mapping(imp, "restored");
	ioctl(imp, IMP_UNMAP);

	munmap(region, 2 * SZ_1M);
	vfio_close(&v);
	st = imp_status(imp);
	say("vfio device closed: move_notify count %u; CPU read: %s", st.moves,
	    cpu_access(cpu));
	show_mapping(imp, "after close");
	return 0;
}
