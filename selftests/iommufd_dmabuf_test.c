// SPDX-License-Identifier: GPL-2.0
/*
 * IOMMU_IOAS_MAP_FILE as a VMM uses it: QEMU 11 exports an assigned
 * device's BAR as a dma-buf and maps it into the guest's IOAS, so that
 * another assigned device can DMA to it peer to peer, and maps memfd guest
 * RAM the same way.
 *
 * vmm (the iommu topology): edu and ivshmem-plain opened through their
 * vfio cdevs, bound to one iommufd and attached to one IOAS.  edu's DMA
 * engine, driven from userspace through its BAR 0, reads and writes the
 * ivshmem BAR by IOAS address; what arrives is checked through the vfio
 * region of ivshmem, or after a second DMA into IOAS-mapped RAM.
 *
 * reach (iommu and iommu-noreach): which devices may share an IOAS with
 * a dma-buf of ivshmem's BAR.  On iommu (an AMD CPU) edu and ivshmem reach
 * it; on iommu-noreach (an Intel CPU, whose q35 host bridge pci_p2pdma does
 * not list) neither does, even ivshmem itself: a translated request turns
 * around in the root complex.
 *
 * ioas (every topology): a dma-buf of ivshmem's BAR and memfds mapped
 * into an IOAS without devices, which any exporter's memory may enter:
 * bad input, alignment, revoked at map time.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include <linux/udmabuf.h>

#include "iommufd_util.h"
#include "kselftest_harness.h"

#define EDU_ID		"0x1234 0x11e8"
#define EDU_BUF		0x40000ull	/* edu's 4 KiB buffer, device side */
#define XFER		2048u		/* a 4 KiB transfer aborts QEMU 7.2 */
#define SZ_2M		(2 * SZ_1M)
#define SZ_1G		(1024 * SZ_1M)

/* The pages pinned by this process (VmPin of /proc/self/status), in kB. */
static long vm_pin_kb(void)
{
	char buf[4096], *p;

	if (read_file("/proc/self/status", buf, sizeof(buf)))
		return -1;
	p = strstr(buf, "VmPin:");
	return p ? atol(p + 6) : -1;
}

/*
 * One edu transfer of XFER bytes between IOAS address @iova and edu's
 * buffer: @to_iova from the buffer, else into it.  edu completes a
 * transfer whose DMA faulted too; 0 once it has, -1 if it never does.
 */
static int edu_dma(volatile uint64_t *edu, uint64_t iova, int to_iova)
{
	int i;

	edu[0x80 / 8] = to_iova ? EDU_BUF : iova;
	edu[0x88 / 8] = to_iova ? iova : EDU_BUF;
	edu[0x90 / 8] = XFER;
	edu[0x98 / 8] = 1 | (to_iova ? 2 : 0);
	for (i = 0; i < 20000; i++) {
		if (!(edu[0x98 / 8] & 1))
			return 0;
		usleep(500);
	}
	return -1;
}

/*
 * vmm: both devices on one IOAS, a RAM buffer mapped at ram_iova for
 * edu's results, and a dma-buf of the first 2 MiB of ivshmem's BAR 2.
 */
FIXTURE(vmm) {
	struct cdev edu, ivshmem;
	int iommufd, dmabuf;
	uint32_t ioas;
	volatile uint64_t *edu_regs;
	uint8_t *ram, *bar;
	uint64_t ram_iova, bar_off, bar_size;
};

FIXTURE_SETUP(vmm)
{
	struct vfio_region_dma_range whole = { 0, SZ_2M };
	uint64_t off, size;

	self->iommufd = self->dmabuf = -1;
	self->edu.fd = self->ivshmem.fd = -1;
	if (strcmp(topo(), "iommu"))
		SKIP(return, "needs P2P through a vIOMMU (the iommu topology)");

	self->iommufd = open_iommufd();
	ASSERT_GE(self->iommufd, 0);
	ASSERT_EQ(0, cdev_open(&self->edu, EDU_ID, self->iommufd));
	ASSERT_EQ(0, cdev_open(&self->ivshmem, IVSHMEM_ID, self->iommufd));
	ASSERT_EQ(0, ioas_alloc(self->iommufd, &self->ioas));
	ASSERT_EQ(0, cdev_attach(&self->edu, self->ioas));
	ASSERT_EQ(0, cdev_attach(&self->ivshmem, self->ioas));

	ASSERT_EQ(0, region(self->edu.fd, VFIO_PCI_BAR0_REGION_INDEX, &off, &size));
	self->edu_regs = mmap(NULL, SZ_1M, PROT_READ | PROT_WRITE, MAP_SHARED,
			      self->edu.fd, off);
	ASSERT_NE(MAP_FAILED, self->edu_regs);
	ASSERT_EQ(0, set_command(&self->edu, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 0));
	ASSERT_EQ(0, set_command(&self->ivshmem, PCI_COMMAND_MEMORY, 0));

	ASSERT_EQ(0, region(self->ivshmem.fd, BAR, &self->bar_off, &self->bar_size));
	self->bar = mmap(NULL, SZ_2M, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->ivshmem.fd, self->bar_off);
	ASSERT_NE(MAP_FAILED, self->bar);
	self->dmabuf = export_ranges(self->ivshmem.fd, BAR, O_RDONLY | O_CLOEXEC,
				     0, 1, &whole, 1);
	ASSERT_GE(self->dmabuf, 0);

	self->ram = mmap(NULL, SZ_64K, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->ram);
	ASSERT_EQ(0, map_user(self->iommufd, self->ioas, self->ram, SZ_64K,
			      &self->ram_iova));
}

FIXTURE_TEARDOWN(vmm)
{
	if (self->dmabuf >= 0)
		close(self->dmabuf);
	if (self->bar && self->bar != MAP_FAILED)
		munmap(self->bar, SZ_2M);
	if (self->edu_regs && self->edu_regs != MAP_FAILED)
		munmap((void *)self->edu_regs, SZ_1M);
	cdev_close(&self->ivshmem);
	cdev_close(&self->edu);
	if (self->iommufd >= 0)
		close(self->iommufd);
	if (self->ram && self->ram != MAP_FAILED)
		munmap(self->ram, SZ_64K);
}

/* edu copies XFER bytes from @iova to the RAM buffer; they land in @out. */
static int copy_to_ram(FIXTURE_DATA(vmm) *self, uint64_t iova, uint8_t *out,
		       const uint8_t *canary)
{
	/* The canary first, so a DMA that faults cannot leave old bytes. */
	memcpy(self->ram, canary, XFER);
	if (edu_dma(self->edu_regs, self->ram_iova, 0) ||
	    edu_dma(self->edu_regs, iova, 0) ||
	    edu_dma(self->edu_regs, self->ram_iova + SZ_4K, 1))
		return -1;
	memcpy(out, self->ram + SZ_4K, XFER);
	return 0;
}

/* edu writes @data to @iova (through the RAM buffer and its own). */
static int copy_from_ram(FIXTURE_DATA(vmm) *self, uint64_t iova,
			 const uint8_t *data)
{
	memcpy(self->ram, data, XFER);
	if (edu_dma(self->edu_regs, self->ram_iova, 0) ||
	    edu_dma(self->edu_regs, iova, 1))
		return -1;
	return 0;
}

/* /dev/kmsg from its end: what the guest kernel logs from now on. */
static int kmsg_from_now(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/*
 * Did intel-iommu log a DMA remapping fault at @iova's page on @kmsg
 * within a second?  Only an IOVA with no IOPTE faults: DMA that the
 * IOMMU translates to a BAR without decode is lost without one.
 */
static int dmar_fault_at(int kmsg, uint64_t iova)
{
	char rec[1024], want[64];
	ssize_t n;
	int i;

	snprintf(want, sizeof(want), "fault addr 0x%llx ",
		 (unsigned long long)(iova & ~(uint64_t)(SZ_4K - 1)));
	for (i = 0; i < 20; i++) {
		while ((n = read(kmsg, rec, sizeof(rec) - 1)) > 0) {
			rec[n] = 0;
			if (strstr(rec, "DMAR") && strstr(rec, want))
				return 1;
		}
		usleep(50000);
	}
	return 0;
}

static const uint8_t *canary(void)
{
	static uint8_t c[XFER];

	memset(c, 0xc5, sizeof(c));
	return c;
}

TEST_F(vmm, p2p_dma_reaches_bar_by_ioas_address)
{
	uint8_t want[XFER], got[XFER];
	long pinned = vm_pin_kb();
	uint64_t iova = 0;

	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, self->dmabuf, 0, SZ_2M,
			      &iova, RW));
	/* The allocator aligned the IOVA like the BAR, for large pages */
	EXPECT_EQ(0, iova % SZ_2M);
	/* In two domains, and still not pinned: device memory has no pages */
	EXPECT_EQ(pinned, vm_pin_kb());

	/* edu writes the BAR, the BAR's own mapping sees it */
	fill(want, XFER, 1);
	ASSERT_EQ(0, copy_from_ram(self, iova + 3 * SZ_4K, want));
	EXPECT_EQ(0, memcmp(self->bar + 3 * SZ_4K, want, XFER));

	/* the CPU writes the BAR, edu reads it */
	fill(self->bar + SZ_1M, XFER, 2);
	ASSERT_EQ(0, copy_to_ram(self, iova + SZ_1M, got, canary()));
	EXPECT_EQ(0, memcmp(got, self->bar + SZ_1M, XFER));

	EXPECT_EQ(SZ_2M, unmap(self->iommufd, self->ioas, iova, SZ_2M));
}

/*
 * Decode off revokes: iommufd unmaps the BAR's IOVAs, so edu's DMA faults
 * in the IOMMU (QEMU drops DMA to a BAR without decode too, so only the
 * fault shows who stopped it).  Decode on restores the same IOAS mapping,
 * without a remap.
 */
TEST_F(vmm, decode_off_unmaps_decode_on_restores_dma)
{
	uint8_t before[XFER], attempt[XFER], got[XFER];
	uint64_t iova = 0;
	int kmsg;

	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, self->dmabuf, 0, SZ_2M,
			      &iova, RW));
	fill(self->bar, XFER, 3);
	memcpy(before, self->bar, XFER);

	ASSERT_EQ(0, set_command(&self->ivshmem, 0, PCI_COMMAND_MEMORY));
	kmsg = kmsg_from_now();
	ASSERT_LE(0, kmsg);
	ASSERT_EQ(0, copy_to_ram(self, iova, got, canary()));
	EXPECT_TRUE(dmar_fault_at(kmsg, iova)) TH_LOG("no IOMMU fault: still mapped while revoked");
	close(kmsg);
	EXPECT_NE(0, memcmp(got, before, XFER)) TH_LOG("edu read the BAR while revoked");
	fill(attempt, XFER, 4);
	ASSERT_EQ(0, copy_from_ram(self, iova, attempt));

	ASSERT_EQ(0, set_command(&self->ivshmem, PCI_COMMAND_MEMORY, 0));
	EXPECT_EQ(0, memcmp(self->bar, before, XFER)) TH_LOG("edu wrote the BAR while revoked");
	ASSERT_EQ(0, copy_to_ram(self, iova, got, canary()));
	EXPECT_EQ(0, memcmp(got, before, XFER)) TH_LOG("not restored after decode on");
	fill(attempt, XFER, 5);
	ASSERT_EQ(0, copy_from_ram(self, iova + SZ_4K, attempt));
	EXPECT_EQ(0, memcmp(self->bar + SZ_4K, attempt, XFER));
	EXPECT_EQ(SZ_2M, unmap(self->iommufd, self->ioas, iova, SZ_2M));
}

/*
 * A reset revokes and, once done, restores: DMA works after it with no
 * remap.  Nothing here writes PCI_COMMAND (a write of memory decode would
 * restore by itself): the reset path's own restore is what is tested.
 */
TEST_F(vmm, reset_done_restores_dma)
{
	uint8_t want[XFER], got[XFER];
	uint64_t iova = 0;
	uint16_t cmd;
	struct vfio_device_info info = { .argsz = sizeof(info) };

	/* ivshmem has its own root port here: a bus reset is always there */
	ASSERT_EQ(0, ioctl(self->ivshmem.fd, VFIO_DEVICE_GET_INFO, &info));
	ASSERT_TRUE(info.flags & VFIO_DEVICE_FLAGS_RESET);
	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, self->dmabuf, 0, SZ_2M,
			      &iova, RW));
	ASSERT_EQ(0, ioctl(self->ivshmem.fd, VFIO_DEVICE_RESET));
	ASSERT_EQ(2, pread(self->ivshmem.fd, &cmd, 2,
			   self->ivshmem.cfg_off + PCI_COMMAND));
	ASSERT_TRUE(cmd & PCI_COMMAND_MEMORY);

	fill(want, XFER, 6);
	ASSERT_EQ(0, copy_from_ram(self, iova + SZ_64K, want));
	EXPECT_EQ(0, memcmp(self->bar + SZ_64K, want, XFER));
	ASSERT_EQ(0, copy_to_ram(self, iova + SZ_64K, got, canary()));
	EXPECT_EQ(0, memcmp(got, want, XFER));
}

/*
 * Closing the exporting device revokes for good.  vfio restores the BAR's
 * decode as it closes, so QEMU still routes DMA to it: only iommufd's
 * unmap keeps edu out.  The IOAS mapping stays until IOMMU_IOAS_UNMAP.
 */
TEST_F(vmm, close_unmaps_for_good)
{
	uint8_t before[XFER], attempt[XFER], got[XFER];
	uint64_t iova = 0, off, size;
	char driver[64];
	uint8_t *bar;

	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, self->dmabuf, 0, SZ_2M,
			      &iova, RW));
	fill(self->bar + SZ_4K, XFER, 7);
	memcpy(before, self->bar + SZ_4K, XFER);
	munmap(self->bar, SZ_2M);
	self->bar = NULL;
	close(self->ivshmem.fd);

	/* Reopen, decode on: nothing gets through. */
	snprintf(driver, sizeof(driver), "%s", self->ivshmem.driver);
	ASSERT_EQ(0, cdev_open(&self->ivshmem, IVSHMEM_ID, self->iommufd));
	snprintf(self->ivshmem.driver, sizeof(driver), "%s", driver);
	ASSERT_EQ(0, set_command(&self->ivshmem, PCI_COMMAND_MEMORY, 0));
	ASSERT_EQ(0, copy_to_ram(self, iova + SZ_4K, got, canary()));
	EXPECT_NE(0, memcmp(got, before, XFER)) TH_LOG("edu read the BAR after close");
	fill(attempt, XFER, 8);
	ASSERT_EQ(0, copy_from_ram(self, iova + SZ_4K, attempt));

	ASSERT_EQ(0, region(self->ivshmem.fd, BAR, &off, &size));
	bar = mmap(NULL, SZ_2M, PROT_READ, MAP_SHARED, self->ivshmem.fd, off);
	ASSERT_NE(MAP_FAILED, bar);
	EXPECT_EQ(0, memcmp(bar + SZ_4K, before, XFER)) TH_LOG("edu wrote the BAR after close");
	munmap(bar, SZ_2M);
	EXPECT_EQ(SZ_2M, unmap(self->iommufd, self->ioas, iova, SZ_2M));
}

/*
 * QEMU exports one range per sparse mmap area: every range is mapped, back
 * to back, from @start in the dma-buf.
 */
TEST_F(vmm, ranges_back_to_back_from_start)
{
	struct vfio_region_dma_range r[3] = {
		{ 0, SZ_64K }, { SZ_1M, SZ_64K }, { 384 * SZ_4K, SZ_64K },
	};
	uint8_t want[XFER];
	uint64_t iova = 0;
	int fd;

	fd = export_ranges(self->ivshmem.fd, BAR, O_RDONLY | O_CLOEXEC, 0, 3, r, 3);
	ASSERT_GE(fd, 0);
	/* From 8 KiB into the second range, through 8 KiB of the third */
	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, fd, SZ_64K + 2 * SZ_4K,
			      SZ_64K, &iova, RW));
	fill(want, XFER, 9);
	ASSERT_EQ(0, copy_from_ram(self, iova + SZ_4K, want));
	EXPECT_EQ(0, memcmp(self->bar + SZ_1M + 3 * SZ_4K, want, XFER));
	fill(want, XFER, 10);
	ASSERT_EQ(0, copy_from_ram(self, iova + SZ_64K - SZ_4K, want));
	EXPECT_EQ(0, memcmp(self->bar + 384 * SZ_4K + SZ_4K, want, XFER));
	EXPECT_EQ(SZ_64K, unmap(self->iommufd, self->ioas, iova, SZ_64K));
	close(fd);
}

/*
 * A domain attached while the BAR is revoked takes DMA to it once access
 * returns (that it holds nothing while revoked is the mock selftest's
 * map_file_dmabuf_attach_revoked).
 */
TEST_F(vmm, domain_attached_while_revoked_takes_dma_after_restore)
{
	struct vfio_device_detach_iommufd_pt det = { .argsz = sizeof(det) };
	struct vfio_device_attach_iommufd_pt at = {
		.argsz = sizeof(at), .pt_id = self->ioas,
	};
	uint8_t want[XFER];
	uint64_t iova = 0;

	/* Both detached; map, revoke, attach edu, restore */
	ASSERT_EQ(0, ioctl(self->edu.fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &det));
	ASSERT_EQ(0, ioctl(self->ivshmem.fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &det));
	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, self->dmabuf, 0, SZ_2M,
			      &iova, RW));
	ASSERT_EQ(0, set_command(&self->ivshmem, 0, PCI_COMMAND_MEMORY));
	ASSERT_EQ(0, ioctl(self->edu.fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at));
	ASSERT_EQ(0, set_command(&self->ivshmem, PCI_COMMAND_MEMORY, 0));

	fill(want, XFER, 11);
	ASSERT_EQ(0, copy_from_ram(self, iova + 5 * SZ_4K, want));
	EXPECT_EQ(0, memcmp(self->bar + 5 * SZ_4K, want, XFER));
}

/*
 * MAP_FILE while the guest has decode off (the VMM does not know): the
 * mapping is accepted and edu reaches the BAR once decode is on, with no
 * call from userspace in between; the dma-buf's fdinfo counts it until
 * it is unmapped.
 */
TEST_F(vmm, map_file_while_revoked_takes_dma_after_decode_on)
{
	uint8_t want[XFER];
	uint64_t iova = 0;
	char val[32];

	ASSERT_EQ(0, set_command(&self->ivshmem, 0, PCI_COMMAND_MEMORY));
	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, self->dmabuf, 0, SZ_2M,
			      &iova, RW));
	ASSERT_EQ(0, set_command(&self->ivshmem, PCI_COMMAND_MEMORY, 0));

	fill(want, XFER, 14);
	ASSERT_EQ(0, copy_from_ram(self, iova + 7 * SZ_4K, want));
	EXPECT_EQ(0, memcmp(self->bar + 7 * SZ_4K, want, XFER));
	ASSERT_EQ(0, fdinfo(self->dmabuf, "iommu_unrestored:", val, sizeof(val)));
	EXPECT_EQ(0, atoi(val));
	ASSERT_EQ(0, fdinfo(self->dmabuf, "iommu_mappings:", val, sizeof(val)));
	EXPECT_LE(1, atoi(val));
	EXPECT_EQ(SZ_2M, unmap(self->iommufd, self->ioas, iova, SZ_2M));
	/* iommufd detached with its last area: no IOMMU importer is left */
	EXPECT_EQ(-1, fdinfo(self->dmabuf, "iommu_mappings:", val, sizeof(val)));
}

struct copies_ms {
	double off, on, unmap;
};

/*
 * @n one-page copies of a dma-buf area in one IOAS, each a record of the
 * dma-buf core per domain: a decode off/on cycle restores every one (the
 * last copy takes edu's DMA), and unmapping all removes every record.
 * The times of the phases go to @t and the log.
 */
static void copies(struct __test_metadata *_metadata, FIXTURE_DATA(vmm) *self,
		   unsigned int n, struct copies_ms *t)
{
	struct iommu_ioas_copy cp = {
		.size = sizeof(cp), .flags = RW, .dst_ioas_id = self->ioas,
		.src_ioas_id = self->ioas, .length = SZ_4K,
	};
	struct iommu_ioas_map ram = {
		.size = sizeof(ram), .flags = RW | IOMMU_IOAS_MAP_FIXED_IOVA,
		.ioas_id = self->ioas, .user_va = (uintptr_t)self->ram,
		.length = SZ_64K, .iova = self->ram_iova,
	};
	double t_copy;
	uint64_t iova = 0, last = 0;
	uint8_t want[XFER];
	long per_area;
	unsigned int i;
	char val[32];

	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, self->dmabuf, 0, SZ_4K,
			      &iova, RW));
	ASSERT_EQ(0, fdinfo(self->dmabuf, "iommu_mappings:", val, sizeof(val)));
	per_area = atol(val);	/* one per domain */
	ASSERT_LE(1, per_area);
	cp.src_iova = iova;
	t_copy = now_ms();
	for (i = 0; i < n; i++) {
		cp.dst_iova = 0;
		ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_IOAS_COPY, &cp));
		last = cp.dst_iova;
	}
	t_copy = now_ms() - t_copy;
	ASSERT_EQ(0, fdinfo(self->dmabuf, "iommu_mappings:", val, sizeof(val)));
	EXPECT_EQ((n + 1) * per_area, atol(val));

	t->off = now_ms();
	ASSERT_EQ(0, set_command(&self->ivshmem, 0, PCI_COMMAND_MEMORY));
	t->off = now_ms() - t->off;
	t->on = now_ms();
	ASSERT_EQ(0, set_command(&self->ivshmem, PCI_COMMAND_MEMORY, 0));
	t->on = now_ms() - t->on;
	ASSERT_EQ(0, fdinfo(self->dmabuf, "iommu_unrestored:", val, sizeof(val)));
	EXPECT_EQ(0, atol(val));
	fill(want, XFER, 15);
	ASSERT_EQ(0, copy_from_ram(self, last, want));
	EXPECT_EQ(0, memcmp(self->bar, want, XFER));

	t->unmap = now_ms();
	EXPECT_EQ((n + 1) * SZ_4K + SZ_64K, unmap_all(self->iommufd, self->ioas));
	t->unmap = now_ms() - t->unmap;
	EXPECT_EQ(-1, fdinfo(self->dmabuf, "iommu_mappings:", val, sizeof(val)));
	/* Put back the RAM buffer edu copies from */
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_IOAS_MAP, &ram));
	TH_LOG("%u copies: copy %.0f ms, decode off %.0f ms, on %.0f ms, unmap %.0f ms",
	       n, t_copy, t->off, t->on, t->unmap);
}

/*
 * 10x the copies cost at most 20x the time (a list walk per area would
 * make it quadratic); the floor keeps timer noise out of the ratio.
 */
static void expect_linear(struct __test_metadata *_metadata,
			  const char *what, double t_n, double t_10n)
{
	EXPECT_GT(20 * (t_n > 10.0 ? t_n : 10.0), t_10n)
		TH_LOG("%s: %.0f ms for 1,000, %.0f ms for 10,000", what, t_n,
		       t_10n);
}

/*
 * Decode off, decode on and unmapping all of 1,000 and 10,000 copies, with
 * work linear in N and no soft lockup in the log.
 */
TEST_F_TIMEOUT(vmm, copies_revoke_restore_unmap_linear, 180)
{
	struct copies_ms t1k, t10k;

	copies(_metadata, self, 1000, &t1k);
	copies(_metadata, self, 10000, &t10k);
	expect_linear(_metadata, "decode off", t1k.off, t10k.off);
	expect_linear(_metadata, "decode on", t1k.on, t10k.on);
	expect_linear(_metadata, "unmap", t1k.unmap, t10k.unmap);
}

/* QEMU maps memfd guest RAM with MAP_FILE: edu DMAs into it. */
TEST_F(vmm, memfd_takes_dma)
{
	uint8_t want[XFER], got[XFER];
	long pinned = vm_pin_kb();
	uint64_t iova = 0;
	uint8_t *mem;
	int mfd;

	mfd = memfd_create("guest-ram", 0);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(0, ftruncate(mfd, SZ_2M));
	mem = mmap(NULL, SZ_2M, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, mem);
	/* From an offset into the file; its pages pinned for the domains */
	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, mfd, SZ_64K, SZ_1M,
			      &iova, RW));
	EXPECT_EQ(pinned + 1024, vm_pin_kb());
	fill(want, XFER, 12);
	ASSERT_EQ(0, copy_from_ram(self, iova + SZ_4K, want));
	EXPECT_EQ(0, memcmp(mem + SZ_64K + SZ_4K, want, XFER));
	fill(mem + SZ_64K + 8 * SZ_4K, XFER, 13);
	ASSERT_EQ(0, copy_to_ram(self, iova + 8 * SZ_4K, got, canary()));
	EXPECT_EQ(0, memcmp(got, mem + SZ_64K + 8 * SZ_4K, XFER));
	EXPECT_EQ(SZ_1M, unmap(self->iommufd, self->ioas, iova, SZ_1M));
	EXPECT_EQ(pinned, vm_pin_kb());
	munmap(mem, SZ_2M);
	close(mfd);
}

/*
 * ioas: an IOAS without devices on every topology, a dma-buf of ivshmem's
 * BAR (through vfio's group interface) and memfds.
 */
static int host_bridge_forwards_p2p(void)
{
	return !strcmp(topo(), "iommu");
}

FIXTURE(reach) {
	struct cdev edu, ivshmem;
	int iommufd, dmabuf;
	uint32_t ioas, ioas2;
};

FIXTURE_SETUP(reach)
{
	struct vfio_region_dma_range whole = { 0, SZ_2M };

	self->iommufd = self->dmabuf = -1;
	self->edu.fd = self->ivshmem.fd = -1;
	if (strcmp(topo(), "iommu") && strcmp(topo(), "iommu-noreach"))
		SKIP(return, "needs a vIOMMU (the iommu and iommu-noreach topologies)");

	self->iommufd = open_iommufd();
	ASSERT_GE(self->iommufd, 0);
	ASSERT_EQ(0, cdev_open(&self->edu, EDU_ID, self->iommufd));
	ASSERT_EQ(0, cdev_open(&self->ivshmem, IVSHMEM_ID, self->iommufd));
	ASSERT_EQ(0, ioas_alloc(self->iommufd, &self->ioas));
	ASSERT_EQ(0, ioas_alloc(self->iommufd, &self->ioas2));
	self->dmabuf = export_ranges(self->ivshmem.fd, BAR, O_RDONLY | O_CLOEXEC,
				     0, 1, &whole, 1);
	ASSERT_GE(self->dmabuf, 0);
}

FIXTURE_TEARDOWN(reach)
{
	if (self->dmabuf >= 0)
		close(self->dmabuf);
	cdev_close(&self->ivshmem);
	cdev_close(&self->edu);
	if (self->iommufd >= 0)
		close(self->iommufd);
}

/*
 * A device that cannot reach the BAR and a dma-buf of it never meet in an
 * IOAS, whichever comes first: the map, the attach and the replace are
 * refused with EOPNOTSUPP, and the refused device stays where it was.
 */
TEST_F(reach, dmabuf_and_device_share_ioas_only_if_host_bridge_forwards)
{
	int want = host_bridge_forwards_p2p() ? 0 : -EOPNOTSUPP;
	uint64_t iova = 0, iova2 = 0;
	int mfd;

	/* The device first: the map is refused, memfd RAM maps anyway */
	ASSERT_EQ(0, cdev_attach(&self->edu, self->ioas));
	EXPECT_EQ(want, map_file(self->iommufd, self->ioas, self->dmabuf, 0,
				 SZ_2M, &iova, RW));
	EXPECT_EQ(want ? 0 : SZ_2M, unmap_all(self->iommufd, self->ioas));
	mfd = memfd_create("guest-ram", 0);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(0, ftruncate(mfd, SZ_64K));
	EXPECT_EQ(0, map_file(self->iommufd, self->ioas, mfd, 0, SZ_64K, &iova,
			      RW));
	close(mfd);

	/* The dma-buf first: attach (ivshmem) and replace (edu) are refused */
	ASSERT_EQ(0, map_file(self->iommufd, self->ioas2, self->dmabuf, 0,
			      SZ_2M, &iova2, RW));
	EXPECT_EQ(want, cdev_attach(&self->ivshmem, self->ioas2));
	EXPECT_EQ(want, cdev_attach(&self->edu, self->ioas2));
	if (want) {
		/* edu still uses its IOAS: the dma-buf cannot enter it */
		EXPECT_EQ(want, map_file(self->iommufd, self->ioas,
					 self->dmabuf, 0, SZ_2M, NULL, RW));
	}

	/* Without the dma-buf, both attach */
	EXPECT_EQ(SZ_2M, unmap_all(self->iommufd, self->ioas2));
	EXPECT_EQ(0, cdev_attach(&self->ivshmem, self->ioas2));
	EXPECT_EQ(0, cdev_attach(&self->edu, self->ioas2));
}

FIXTURE(ioas) {
	struct vdev v;
	int iommufd, dmabuf;
	uint32_t ioas;
	long pinned;
};

FIXTURE_SETUP(ioas)
{
	struct vfio_region_dma_range whole = { 0, SZ_2M };

	self->iommufd = self->dmabuf = -1;
	self->v.device = self->v.group = self->v.container = -1;
	ASSERT_EQ(0, vfio_open(&self->v));
	self->dmabuf = export_ranges(self->v.device, BAR, O_RDONLY | O_CLOEXEC,
				     0, 1, &whole, 1);
	ASSERT_GE(self->dmabuf, 0);
	self->iommufd = open_iommufd();
	ASSERT_GE(self->iommufd, 0);
	ASSERT_EQ(0, ioas_alloc(self->iommufd, &self->ioas));
	self->pinned = vm_pin_kb();
	ASSERT_LE(0, self->pinned);
}

FIXTURE_TEARDOWN(ioas)
{
	if (self->iommufd >= 0)
		close(self->iommufd);
	if (self->dmabuf >= 0)
		close(self->dmabuf);
	vfio_close(&self->v);
}

/*
 * Nothing mapped, nothing pinned, no reference to the dma-buf kept (an
 * attachment holds its file): what every refused map must leave.
 */
#define EXPECT_NOTHING_LEFT() do { \
	char count[32]; \
	EXPECT_EQ(0, unmap_all(self->iommufd, self->ioas)); \
	EXPECT_EQ(self->pinned, vm_pin_kb()); \
	ASSERT_EQ(0, fdinfo(self->dmabuf, "count:", count, sizeof(count))); \
	EXPECT_EQ(1, atoi(count)); \
} while (0)

/* The errno of a shared mmap() of @fd with @prot, or 0 if it maps. */
static int shared_mmap_errno(int fd, int prot)
{
	void *p = mmap(NULL, SZ_4K, prot, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return errno;
	munmap(p, SZ_4K);
	return 0;
}

/*
 * No device uses the IOAS, so nothing needs to reach the BAR yet, also
 * where no P2P path exists (noreach).
 */
TEST_F(ioas, dmabuf_maps_pinning_nothing_while_no_device_uses_ioas)
{
	uint64_t iova = 0;

	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, self->dmabuf, 0, SZ_2M,
			      &iova, RW));
	/* Device memory is not pinned, nor charged to the user */
	EXPECT_EQ(self->pinned, vm_pin_kb());
	EXPECT_EQ(SZ_2M, unmap(self->iommufd, self->ioas, iova, SZ_2M));
}

TEST_F(ioas, dmabuf_bad_ranges_refused)
{
	uint64_t iova = 0;

	EXPECT_EQ(-EINVAL, map_file(self->iommufd, self->ioas, self->dmabuf,
				    SZ_4K / 2, SZ_4K, &iova, RW));
	EXPECT_EQ(-EINVAL, map_file(self->iommufd, self->ioas, self->dmabuf,
				    0, SZ_4K + 1, &iova, RW));
	EXPECT_EQ(-EINVAL, map_file(self->iommufd, self->ioas, self->dmabuf,
				    0, 0, &iova, RW));
	EXPECT_EQ(-EINVAL, map_file(self->iommufd, self->ioas, self->dmabuf,
				    SZ_2M - SZ_4K, 2 * SZ_4K, &iova, RW));
	EXPECT_EQ(-EINVAL, map_file(self->iommufd, self->ioas, self->dmabuf,
				    SZ_2M, SZ_4K, &iova, RW));
	EXPECT_EQ(-EOVERFLOW, map_file(self->iommufd, self->ioas, self->dmabuf,
				       -2 * SZ_4K, 4 * SZ_4K, &iova, RW));
	/* a fixed IOVA in the middle of a page, even with no domain yet */
	iova = SZ_4K / 2;
	EXPECT_EQ(-EINVAL, map_file(self->iommufd, self->ioas, self->dmabuf, 0,
				    SZ_4K, &iova, RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_NOTHING_LEFT();
}

TEST_F(ioas, bad_arguments_refused)
{
	int mfd;

	mfd = memfd_create("ram", 0);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(0, ftruncate(mfd, SZ_1M));
	EXPECT_EQ(-EBADF, map_file(self->iommufd, self->ioas, -1, 0, SZ_4K, NULL, RW));
	EXPECT_EQ(-EINVAL, map_file(self->iommufd, self->ioas, mfd, 0, SZ_4K, NULL, 0));
	EXPECT_EQ(-EOPNOTSUPP, map_file(self->iommufd, self->ioas, mfd, 0, SZ_4K,
					NULL, RW | (1u << 31)));
	EXPECT_EQ(-ENOENT, map_file(self->iommufd, self->ioas + 1000, mfd, 0, SZ_4K,
				    NULL, RW));
	EXPECT_NOTHING_LEFT();
	close(mfd);
}

TEST_F(ioas, memfd_maps_by_offset_pinning_nothing_without_a_domain)
{
	uint64_t iova = 0;
	int mfd;

	mfd = memfd_create("ram", 0);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(0, ftruncate(mfd, SZ_2M));
	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, mfd, SZ_4K, SZ_1M, &iova, RW));
	/* Without a domain nothing is pinned yet, as for IOMMU_IOAS_MAP */
	EXPECT_EQ(self->pinned, vm_pin_kb());
	EXPECT_EQ(SZ_1M, unmap(self->iommufd, self->ioas, iova, SZ_1M));
	close(mfd);
}

TEST_F(ioas, memfd_bad_files_refused)
{
	int mfd, ro, other;
	char path[64];

	mfd = memfd_create("ram", MFD_ALLOW_SEALING);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(0, ftruncate(mfd, SZ_1M));
	/* past the end of the file */
	EXPECT_EQ(-EINVAL, map_file(self->iommufd, self->ioas, mfd, SZ_1M - SZ_4K,
				    2 * SZ_4K, NULL, RW));
	EXPECT_EQ(-EOVERFLOW, map_file(self->iommufd, self->ioas, mfd, -SZ_4K,
				       2 * SZ_4K, NULL, RW));
	/* not a memfd: a procfs file */
	other = open("/proc/self/status", O_RDONLY);
	ASSERT_GE(other, 0);
	EXPECT_EQ(-EINVAL, map_file(self->iommufd, self->ioas, other, 0, SZ_4K,
				    NULL, IOMMU_IOAS_MAP_READABLE));
	close(other);
	/* DMA may not write what the process may not, with mmap()'s errno */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	ro = open(path, O_RDONLY);
	ASSERT_GE(ro, 0);
	EXPECT_EQ(-shared_mmap_errno(ro, PROT_READ | PROT_WRITE),
		  map_file(self->iommufd, self->ioas, ro, 0, SZ_4K, NULL, RW));
	EXPECT_EQ(EACCES, shared_mmap_errno(ro, PROT_READ | PROT_WRITE));
	EXPECT_NOTHING_LEFT();
	/* ... but may read it */
	EXPECT_EQ(0, map_file(self->iommufd, self->ioas, ro, 0, SZ_4K, NULL,
			      IOMMU_IOAS_MAP_READABLE));
	EXPECT_EQ(SZ_4K, unmap_all(self->iommufd, self->ioas));
	close(ro);

	/* A writable DMA mapping keeps the file from being write-sealed */
	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, mfd, 0, SZ_4K, NULL, RW));
	EXPECT_NE(0, fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(SZ_4K, unmap_all(self->iommufd, self->ioas));
	/* and once sealed, DMA may not write it */
	ASSERT_EQ(0, fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE));
	EXPECT_EQ(EPERM, shared_mmap_errno(mfd, PROT_READ | PROT_WRITE));
	EXPECT_EQ(-EPERM, map_file(self->iommufd, self->ioas, mfd, 0, SZ_4K, NULL, RW));
	EXPECT_NOTHING_LEFT();
	/* ... but may read it, as mmap() may */
	EXPECT_EQ(0, shared_mmap_errno(mfd, PROT_READ));
	EXPECT_EQ(0, map_file(self->iommufd, self->ioas, mfd, 0, SZ_4K, NULL,
			      IOMMU_IOAS_MAP_READABLE));
	EXPECT_EQ(SZ_4K, unmap_all(self->iommufd, self->ioas));
	/* A file not open for reading: not even DMA reads */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	ro = open(path, O_WRONLY);
	ASSERT_GE(ro, 0);
	EXPECT_EQ(EACCES, shared_mmap_errno(ro, PROT_READ));
	EXPECT_EQ(-EACCES, map_file(self->iommufd, self->ioas, ro, 0, SZ_4K, NULL,
				    IOMMU_IOAS_MAP_READABLE));
	EXPECT_NOTHING_LEFT();
	close(ro);
	close(mfd);
}

/*
 * A writable map that fails after it took the file's write hold (here at
 * an IOVA already in use) gives the hold back: the file can then be
 * write-sealed, as after munmap().
 */
TEST_F(ioas, memfd_failed_map_lets_file_be_sealed)
{
	uint64_t iova = 0;
	int mfd;

	mfd = memfd_create("ram", MFD_ALLOW_SEALING);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(0, ftruncate(mfd, SZ_1M));
	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, mfd, 0, SZ_4K, &iova,
			      IOMMU_IOAS_MAP_READABLE));
	EXPECT_EQ(-EEXIST, map_file(self->iommufd, self->ioas, mfd, 0, SZ_4K,
				    &iova, RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	EXPECT_EQ(0, fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE));
	EXPECT_EQ(SZ_4K, unmap_all(self->iommufd, self->ioas));
	close(mfd);
}

/*
 * F_SEAL_FUTURE_WRITE refuses new shared writable mmap()s, and writable DMA
 * with the same errno; reading works for both.
 */
TEST_F(ioas, memfd_future_write_sealed_not_written)
{
	int mfd;

	mfd = memfd_create("ram", MFD_ALLOW_SEALING);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(0, ftruncate(mfd, SZ_1M));
	ASSERT_EQ(0, fcntl(mfd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE));
	EXPECT_EQ(EPERM, shared_mmap_errno(mfd, PROT_READ | PROT_WRITE));
	EXPECT_EQ(-EPERM, map_file(self->iommufd, self->ioas, mfd, 0, SZ_4K,
				   NULL, RW));
	EXPECT_NOTHING_LEFT();
	EXPECT_EQ(0, shared_mmap_errno(mfd, PROT_READ));
	EXPECT_EQ(0, map_file(self->iommufd, self->ioas, mfd, 0, SZ_4K, NULL,
			      IOMMU_IOAS_MAP_READABLE));
	EXPECT_EQ(SZ_4K, unmap_all(self->iommufd, self->ioas));
	close(mfd);
}

/*
 * An append-only memfd open for writing cannot be mapped shared by mmap(),
 * so DMA may not write it either, with the same errno.  Reading by DMA
 * works, where mmap() refuses even PROT_READ (mprotect() could add write
 * to it; a DMA mapping cannot change).
 */
TEST_F(ioas, memfd_append_only_not_written)
{
	int flags = FS_APPEND_FL, mfd;

	mfd = memfd_create("append", 0);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(0, ftruncate(mfd, SZ_1M));
	ASSERT_EQ(0, ioctl(mfd, FS_IOC_SETFLAGS, &flags)) TH_LOG("chattr +a: %s", strerror(errno));
	EXPECT_EQ(EACCES, shared_mmap_errno(mfd, PROT_READ | PROT_WRITE));
	EXPECT_EQ(-EACCES, map_file(self->iommufd, self->ioas, mfd, 0, SZ_4K, NULL, RW));
	EXPECT_NOTHING_LEFT();
	EXPECT_EQ(EACCES, shared_mmap_errno(mfd, PROT_READ));
	EXPECT_EQ(0, map_file(self->iommufd, self->ioas, mfd, 0, SZ_4K, NULL,
			      IOMMU_IOAS_MAP_READABLE));
	EXPECT_EQ(SZ_4K, unmap_all(self->iommufd, self->ioas));
	flags = 0;
	ASSERT_EQ(0, ioctl(mfd, FS_IOC_SETFLAGS, &flags));
	close(mfd);
}

/*
 * Where the IOVA space has no room at the memory's alignment (2 MiB or
 * more for the BAR), a smaller one is taken rather than ENOSPC: a window
 * of 2 MiB + 12 KiB that starts 4 KiB past a 2 MiB boundary.
 */
TEST_F(ioas, dmabuf_iova_alignment_falls_back)
{
	struct iommu_iova_range win = {
		.start = SZ_1G + SZ_4K, .last = SZ_1G + SZ_2M + 3 * SZ_4K - 1,
	};
	struct iommu_ioas_allow_iovas allow = {
		.size = sizeof(allow), .ioas_id = self->ioas, .num_iovas = 1,
		.allowed_iovas = (uintptr_t)&win,
	};
	uint64_t iova = 0;

	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_IOAS_ALLOW_IOVAS, &allow));
	ASSERT_EQ(0, map_file(self->iommufd, self->ioas, self->dmabuf, 0, SZ_2M,
			      &iova, RW));
	/* 8 KiB is the largest alignment that fits in the window */
	EXPECT_EQ(SZ_1G + 2 * SZ_4K, iova);
	EXPECT_GE(win.last, iova + SZ_2M - 1);
	EXPECT_EQ(SZ_2M, unmap_all(self->iommufd, self->ioas));
}

/* udmabuf exports pages, not device memory by physical address. */
TEST_F(ioas, dmabuf_without_physical_ranges_refused)
{
	struct udmabuf_create create = { .size = SZ_64K };
	int mfd, dev, buf;
	char count[32];

	dev = open("/dev/udmabuf", O_RDWR);
	ASSERT_LE(0, dev) TH_LOG("no /dev/udmabuf: the test kernel has CONFIG_UDMABUF=y");
	mfd = memfd_create("udmabuf", MFD_ALLOW_SEALING);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(0, ftruncate(mfd, SZ_64K));
	ASSERT_EQ(0, fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK));
	create.memfd = mfd;
	buf = ioctl(dev, UDMABUF_CREATE, &create);
	ASSERT_GE(buf, 0);
	EXPECT_EQ(-EOPNOTSUPP, map_file(self->iommufd, self->ioas, buf, 0, SZ_64K,
					NULL, RW));
	EXPECT_NOTHING_LEFT();
	ASSERT_EQ(0, fdinfo(buf, "count:", count, sizeof(count)));
	EXPECT_EQ(1, atoi(count));
	close(buf);
	close(mfd);
	close(dev);
}

/*
 * A dma-buf revoked when it is mapped: the map is accepted (one revoke
 * model: what is mapped while revoked is filled when access returns, which
 * vmm.map_file_while_revoked_takes_dma_after_decode_on proves with DMA).
 */
TEST_F(ioas, dmabuf_revoked_at_map_time_accepted)
{
	ASSERT_EQ(0, set_memory_decode(&self->v, 0));
	EXPECT_EQ(0, map_file(self->iommufd, self->ioas, self->dmabuf, 0,
			      SZ_2M, NULL, RW));
	ASSERT_EQ(0, set_memory_decode(&self->v, 1));
	EXPECT_EQ(SZ_2M, unmap_all(self->iommufd, self->ioas));
	EXPECT_NOTHING_LEFT();
}

TEST_HARNESS_MAIN
