// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA umems of dma-bufs, with QEMU's edu as the DMA device of an
 * unregistered ib_device (modules/dmabuf_importer.c): a vfio-pci dma-buf of
 * ivshmem's BAR 2 and a udmabuf (an sg_table exporter, through the dma-buf
 * core's conversion), as dynamic, pinned and pinned-revocable umems.  The
 * blocks a driver would program are checked against the exporter's ranges
 * and used for real DMA.
 */
#include <sys/mman.h>
#include <linux/udmabuf.h>

#include "kselftest_harness.h"
#include "vfio_util.h"

#define SZ_2M		(2 * SZ_1M)
#define SZ_1G		(1024 * SZ_1M)
#define BITMAP		(SZ_4K | SZ_2M | SZ_1G)

/* The dma-buf: 1 GiB of the BAR at 1 GiB, then 2 MiB at 0. */
#define A_OFF		SZ_1G
#define A_LEN		SZ_1G
#define B_OFF		0
#define B_LEN		SZ_2M

FIXTURE(umem) {
	struct vdev v;
	int imp, dmabuf;
	struct imp_range ranges[2];	/* the exporter's, for edu */
	uint8_t *region;		/* BAR 2 [0, 2 MiB) through vfio */
};

FIXTURE_SETUP(umem)
{
	struct vfio_region_dma_range r[2] = { { A_OFF, A_LEN }, { B_OFF, B_LEN } };
	uint32_t nr = 2;
	int peek;

	self->imp = self->dmabuf = -1;
	ASSERT_EQ(0, vfio_open(&self->v));
	ASSERT_GE(self->v.bar_size, 2 * SZ_1G) TH_LOG("the VM needs BAR_MB >= 2048");
	self->dmabuf = export_ranges(self->v.device, BAR, O_RDWR | O_CLOEXEC, 0, 2, r, 2);
	ASSERT_GE(self->dmabuf, 0);
	self->region = mmap(NULL, SZ_2M, PROT_READ | PROT_WRITE, MAP_SHARED,
			    self->v.device, self->v.bar_off);
	ASSERT_NE(MAP_FAILED, self->region);
	self->imp = open_importer();
	ASSERT_GE(self->imp, 0);

	if (!strcmp(topo(), "noreach"))
		return;
	/* What the exporter maps for edu, through the range API. */
	peek = open_importer();
	ASSERT_GE(peek, 0);
	ASSERT_EQ(0, imp_attach(peek, self->dmabuf, IMP_DYNAMIC | IMP_P2P | IMP_REVOCABLE));
	ASSERT_EQ(0, imp_map(peek, IMP_API_RANGES, 0, self->ranges, &nr));
	close(peek);
}

FIXTURE_TEARDOWN(umem)
{
	if (self->imp >= 0)
		close(self->imp);
	if (self->region && self->region != MAP_FAILED)
		munmap(self->region, SZ_2M);
	if (self->dmabuf >= 0)
		close(self->dmabuf);
	vfio_close(&self->v);
}

static int umem_get(int imp, int fd, uint32_t mode, uint64_t offset,
		    uint64_t length, uint64_t iova, uint64_t bitmap,
		    uint64_t *blocks, uint32_t room, struct imp_umem *out)
{
	struct imp_umem u = {
		.fd = fd, .mode = mode, .offset = offset, .length = length,
		.iova = iova, .pgsz_bitmap = bitmap, .nr_blocks = room,
		.blocks = (uintptr_t)blocks,
	};

	if (ioctl(imp, IMP_UMEM_GET, &u))
		return -errno;
	if (out)
		*out = u;
	return 0;
}

static int umem_map(int imp, uint64_t iova, uint64_t bitmap, struct imp_umem *out)
{
	struct imp_umem u = { .iova = iova, .pgsz_bitmap = bitmap };

	if (ioctl(imp, IMP_UMEM_MAP, &u))
		return -errno;
	if (out)
		*out = u;
	return 0;
}

static struct imp_umem_status umem_status(int imp)
{
	struct imp_umem_status st = {};

	ioctl(imp, IMP_UMEM_STATUS, &st);
	return st;
}

static int umem_dma(int imp, uint64_t offset, void *data, uint32_t len, int to_mr)
{
	struct imp_dma d = { .offset = offset, .len = len, .to_dmabuf = to_mr,
			     .data = (uintptr_t)data };

	return ioctl(imp, IMP_UMEM_DMA, &d) ? -errno : 0;
}

#define NEEDS_P2P() do { \
	if (!strcmp(topo(), "noreach")) \
		SKIP(return, "no P2P path in this topology (the udmabuf cases still run)"); \
} while (0)

TEST_F(umem, aligned_1g_slice_is_one_block)
{
	struct imp_umem u;
	uint64_t blocks[4];

	NEEDS_P2P();
	ASSERT_EQ(0, umem_get(self->imp, self->dmabuf, IMP_UMEM_DYNAMIC, 0, A_LEN,
			      0x40000000, BITMAP, blocks, 4, &u));
	EXPECT_EQ(SZ_1G, u.pgsz);
	EXPECT_EQ(1, u.nr_blocks);
	EXPECT_EQ(self->ranges[0].addr, blocks[0]);
	EXPECT_EQ(262144, u.page_blocks);
	TH_LOG("%s: 1 GiB aligned slice: %u block of %#llx bytes; %llu blocks at PAGE_SIZE",
	       topo(), u.nr_blocks, (unsigned long long)u.pgsz,
	       (unsigned long long)u.page_blocks);
}

/* An MR over the end of one slice and the start of the next. */
TEST_F(umem, trimmed_view_across_slices)
{
	const uint64_t offset = A_LEN - 2 * SZ_4K + 0x123, length = 4 * SZ_4K;
	uint64_t blocks[8], want[5];
	struct imp_umem u;
	int i;

	NEEDS_P2P();
	ASSERT_EQ(0, umem_get(self->imp, self->dmabuf, IMP_UMEM_DYNAMIC, offset,
			      length, 0x10123, BITMAP, blocks, 8, &u));
	EXPECT_EQ(SZ_4K, u.pgsz);
	/* Pages touched: 2 at the end of slice A, 3 at the start of slice B. */
	want[0] = self->ranges[0].addr + A_LEN - 2 * SZ_4K;
	want[1] = want[0] + SZ_4K;
	for (i = 0; i < 3; i++)
		want[2 + i] = self->ranges[1].addr + i * SZ_4K;
	ASSERT_EQ(5, u.nr_blocks);
	for (i = 0; i < 5; i++)
		EXPECT_EQ(want[i], blocks[i]) TH_LOG("block %d", i);
}

TEST_F(umem, dma_through_blocks)
{
	uint8_t want[2048], got[2048];
	struct imp_umem u;

	NEEDS_P2P();
	/* The MR is slice B: dma-buf offset 1 GiB, BAR offset 0. */
	ASSERT_EQ(0, umem_get(self->imp, self->dmabuf, IMP_UMEM_DYNAMIC, A_LEN,
			      B_LEN, 0x200000, BITMAP, NULL, 0, &u));
	EXPECT_EQ(SZ_2M, u.pgsz);
	fill(want, sizeof(want), 50);
	ASSERT_EQ(0, umem_dma(self->imp, 8192, want, sizeof(want), 1));
	EXPECT_EQ(0, memcmp(self->region + B_OFF + 8192, want, sizeof(want)));
	fill(want, sizeof(want), 51);
	memcpy(self->region + B_OFF + SZ_1M, want, sizeof(want));
	ASSERT_EQ(0, umem_dma(self->imp, SZ_1M, got, sizeof(got), 0));
	EXPECT_EQ(0, memcmp(got, want, sizeof(want)));
}

/* A doorbell MR: ivshmem's 256-byte BAR 0 exported as its page. */
TEST_F(umem, doorbell_mr_on_subpage_bar)
{
	struct vfio_region_dma_range r = { 0, 256 };
	uint32_t doorbell = 0x0badcafe, got = 0;
	struct imp_umem u;
	int fd;

	NEEDS_P2P();
	fd = export_ranges(self->v.device, VFIO_PCI_BAR0_REGION_INDEX, O_RDWR, 0, 1, &r, 1);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, umem_get(self->imp, fd, IMP_UMEM_DYNAMIC, 0, SZ_4K, 0,
			      BITMAP, NULL, 0, &u));
	EXPECT_EQ(SZ_4K, u.pgsz);
	ASSERT_EQ(4, pwrite(self->v.device, &got, 4, 0));	/* IntrMask */
	ASSERT_EQ(0, umem_dma(self->imp, 0, &doorbell, 4, 1));
	ASSERT_EQ(4, pread(self->v.device, &got, 4, 0));
	EXPECT_EQ(doorbell, got);
	doorbell = 0;
	ASSERT_EQ(0, umem_dma(self->imp, 0, &doorbell, 4, 1));
	ioctl(self->imp, IMP_UMEM_PUT);
	close(fd);
}

TEST_F(umem, dynamic_invalidated_by_reset_and_decode)
{
	uint8_t buf[256] = {};
	struct imp_umem u;

	NEEDS_P2P();
	ASSERT_EQ(0, umem_get(self->imp, self->dmabuf, IMP_UMEM_DYNAMIC, A_LEN,
			      B_LEN, 0, BITMAP, NULL, 0, &u));
	if (self->v.flags & VFIO_DEVICE_FLAGS_RESET) {
		ASSERT_EQ(0, ioctl(self->v.device, VFIO_DEVICE_RESET));
		/* Revoked for the reset; the restore is not announced. */
		EXPECT_EQ(1, umem_status(self->imp).invalidations);
		EXPECT_EQ(0, umem_status(self->imp).mapped);
		ASSERT_EQ(0, umem_map(self->imp, 0, BITMAP, &u));
	}
	ASSERT_EQ(0, set_memory_decode(&self->v, 0));
	EXPECT_EQ(0, umem_status(self->imp).mapped);
	EXPECT_EQ(-ENODEV, umem_map(self->imp, 0, BITMAP, NULL));
	EXPECT_EQ(-ENODEV, umem_dma(self->imp, 0, buf, sizeof(buf), 1));
	ASSERT_EQ(0, set_memory_decode(&self->v, 1));
	ASSERT_EQ(0, umem_map(self->imp, 0, BITMAP, &u));
	EXPECT_EQ(SZ_2M, u.pgsz);
	ASSERT_EQ(0, umem_dma(self->imp, 0, buf, sizeof(buf), 1));
}

TEST_F(umem, dynamic_invalidated_by_close)
{
	uint8_t buf[256] = {};
	struct imp_umem u;

	NEEDS_P2P();
	ASSERT_EQ(0, umem_get(self->imp, self->dmabuf, IMP_UMEM_DYNAMIC, A_LEN,
			      B_LEN, 0, BITMAP, NULL, 0, &u));
	munmap(self->region, SZ_2M);
	self->region = NULL;
	vfio_close(&self->v);
	EXPECT_EQ(1, umem_status(self->imp).invalidations);
	EXPECT_EQ(0, umem_status(self->imp).mapped);
	EXPECT_EQ(-ENODEV, umem_map(self->imp, 0, BITMAP, NULL));
	EXPECT_EQ(-ENODEV, umem_dma(self->imp, 0, buf, sizeof(buf), 1));
}

TEST_F(umem, plain_pin_refused)
{
	NEEDS_P2P();
	EXPECT_EQ(-EOPNOTSUPP, umem_get(self->imp, self->dmabuf, IMP_UMEM_PINNED,
					A_LEN, B_LEN, 0, BITMAP, NULL, 0, NULL));
}

TEST_F(umem, pinned_revocable_revoked_by_close)
{
	uint8_t buf[256] = {};
	struct imp_umem u;
	struct imp_umem_status st;

	NEEDS_P2P();
	ASSERT_EQ(0, umem_get(self->imp, self->dmabuf, IMP_UMEM_PINNED_REVOCABLE,
			      A_LEN, B_LEN, 0, BITMAP, NULL, 0, &u));
	ASSERT_EQ(0, umem_dma(self->imp, 0, buf, sizeof(buf), 1));
	munmap(self->region, SZ_2M);
	self->region = NULL;
	vfio_close(&self->v);
	st = umem_status(self->imp);
	EXPECT_EQ(1, st.revoke_calls);
	EXPECT_EQ(1, st.revoked_mapped);
	EXPECT_EQ(1, st.revoked);
	EXPECT_EQ(0, st.mapped);
	EXPECT_EQ(-ENODEV, umem_map(self->imp, 0, BITMAP, NULL));
	EXPECT_EQ(-ENODEV, umem_dma(self->imp, 0, buf, sizeof(buf), 1));
	/* Releasing a revoked umem is clean and does not call back again. */
	EXPECT_EQ(0, ioctl(self->imp, IMP_UMEM_PUT));
	EXPECT_EQ(1, umem_status(self->imp).revoke_calls);
}

/*
 * irdma deregisters a dma-buf MR by releasing its umem first:
 * the release must call the revoke callback, once, while still mapped.
 */
TEST_F(umem, pinned_revocable_release_revokes_before_unmap)
{
	struct imp_umem_status st;

	NEEDS_P2P();
	ASSERT_EQ(0, umem_get(self->imp, self->dmabuf, IMP_UMEM_PINNED_REVOCABLE,
			      A_LEN, B_LEN, 0, BITMAP, NULL, 0, NULL));
	EXPECT_EQ(0, umem_status(self->imp).revoke_calls);
	ASSERT_EQ(0, ioctl(self->imp, IMP_UMEM_PUT));
	st = umem_status(self->imp);
	EXPECT_EQ(1, st.revoke_calls);
	EXPECT_EQ(1, st.revoked_mapped);
	/* The dma-buf is whole again: a new import maps it. */
	EXPECT_EQ(0, umem_get(self->imp, self->dmabuf, IMP_UMEM_DYNAMIC, 0,
			      A_LEN, 0, BITMAP, NULL, 0, NULL));
}

/* A udmabuf of a memfd: an sg_table exporter, mapped as ranges. */
static int make_udmabuf(int *memfd, size_t size)
{
	struct udmabuf_create create = { .flags = UDMABUF_FLAGS_CLOEXEC, .size = size };
	int dev, fd;

	*memfd = memfd_create("umem-test", MFD_ALLOW_SEALING);
	if (*memfd < 0 || ftruncate(*memfd, size) ||
	    fcntl(*memfd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
		return -1;
	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		return -1;
	create.memfd = *memfd;
	fd = ioctl(dev, UDMABUF_CREATE, &create);
	close(dev);
	return fd;
}

TEST_F(umem, udmabuf_through_core_conversion)
{
	const size_t size = 64 * SZ_4K;
	uint8_t want[2048], *mem;
	uint64_t blocks[64];
	struct imp_umem u;
	int memfd, ubuf, mode, i;

	ubuf = make_udmabuf(&memfd, size);
	ASSERT_GE(ubuf, 0);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	ASSERT_NE(MAP_FAILED, mem);

	for (mode = IMP_UMEM_DYNAMIC; mode <= IMP_UMEM_PINNED_REVOCABLE; mode++) {
		ASSERT_EQ(0, umem_get(self->imp, ubuf, mode, 0, size, 0, SZ_4K,
				      blocks, 64, &u)) TH_LOG("mode %d", mode);
		EXPECT_EQ(64, u.nr_blocks);
		for (i = 0; i < 64; i++)
			EXPECT_EQ(0, blocks[i] % SZ_4K);
		fill(want, sizeof(want), 60 + mode);
		ASSERT_EQ(0, umem_dma(self->imp, 5 * SZ_4K + 512, want, sizeof(want), 1));
		EXPECT_EQ(0, memcmp(mem + 5 * SZ_4K + 512, want, sizeof(want)));
		ASSERT_EQ(0, ioctl(self->imp, IMP_UMEM_PUT));
	}
	munmap(mem, size);
	close(ubuf);
	close(memfd);
}

TEST_HARNESS_MAIN
