// SPDX-License-Identifier: GPL-2.0
/*
 * VFIO_DEVICE_FEATURE_DMA_BUF on a real device: QEMU's ivshmem-plain, whose
 * BAR 2 is RAM, exported through vfio-pci and imported by the edu-based
 * test importer (modules/dmabuf_importer.c), which DMAs to it peer-to-peer.
 *
 * The guest's topology comes in $TOPO: "switch" (both devices below one
 * PCIe switch, bus addresses), "iommu" (through the host bridge and an
 * IOMMU, IOVAs) or "noreach" (no P2P path: attach refused).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vfio_util.h"



static sigjmp_buf sigbus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(sigbus_jmp, 1);
}

/* Read one byte at @p; 1 if that raised SIGBUS. */
static int faults(volatile uint8_t *p)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	int hit = 0;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(sigbus_jmp, 1))
		hit = 1;
	else
		(void)*p;
	sigaction(SIGBUS, &old, NULL);
	return hit;
}

/* ---- the uAPI ---- */

FIXTURE(dev) {
	struct vdev v;
};

FIXTURE_SETUP(dev)
{
	ASSERT_EQ(0, vfio_open(&self->v)) TH_LOG("cannot open ivshmem through vfio-pci");
	ASSERT_GE(self->v.bar_size, 4 * SZ_1M);
}

FIXTURE_TEARDOWN(dev)
{
	vfio_close(&self->v);
}

TEST_F(dev, probe_and_set)
{
	struct vfio_device_feature feat = {
		.argsz = sizeof(feat),
		.flags = VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET |
			 VFIO_DEVICE_FEATURE_DMA_BUF,
	};

	EXPECT_EQ(0, ioctl(self->v.device, VFIO_DEVICE_FEATURE, &feat));
	feat.flags = VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET |
		     VFIO_DEVICE_FEATURE_DMA_BUF;
	EXPECT_EQ(-1, ioctl(self->v.device, VFIO_DEVICE_FEATURE, &feat));
	EXPECT_EQ(EINVAL, errno);
}

/* The errno rules, one case each. */
FIXTURE(rules) {
	struct vdev v;
};

FIXTURE_SETUP(rules)
{
	ASSERT_EQ(0, vfio_open(&self->v));
}

FIXTURE_TEARDOWN(rules)
{
	vfio_close(&self->v);
}

/* Offsets relative to the BAR's end, resolved at run time. */
#define BAR_END		(1ull << 62)

FIXTURE_VARIANT(rules) {
	uint32_t region, flags, open_flags, nr, argsz_nr;
	struct vfio_region_dma_range r[2];
	int want_errno;
};

#define BAD(name_, err_, ...) \
	FIXTURE_VARIANT_ADD(rules, name_) { .region = BAR, .nr = 1, .argsz_nr = 1, \
		.open_flags = O_RDWR, .r = { { 0, SZ_4K } }, .want_errno = err_, \
		__VA_ARGS__ }

BAD(valid, 0);
BAD(nr_ranges_zero, EINVAL, .nr = 0);
BAD(flags_nonzero, EINVAL, .flags = 1);
BAD(rom_region, ENODEV, .region = VFIO_PCI_ROM_REGION_INDEX);
BAD(config_region, ENODEV, .region = VFIO_PCI_CONFIG_REGION_INDEX);
BAD(absent_bar, EINVAL, .region = VFIO_PCI_BAR1_REGION_INDEX);
/* ivshmem's BAR 0 is 256 bytes of registers alone in their page. */
BAD(subpage_bar_whole, 0, .region = VFIO_PCI_BAR0_REGION_INDEX, .r = { { 0, 256 } });
BAD(subpage_bar_its_page, 0, .region = VFIO_PCI_BAR0_REGION_INDEX);
BAD(subpage_bar_one_byte_more, EINVAL, .region = VFIO_PCI_BAR0_REGION_INDEX,
    .r = { { 0, 257 } });
BAD(subpage_bar_part, EINVAL, .region = VFIO_PCI_BAR0_REGION_INDEX, .r = { { 0, 128 } });
BAD(subpage_bar_twice, EINVAL, .region = VFIO_PCI_BAR0_REGION_INDEX, .nr = 2,
    .argsz_nr = 2, .r = { { 0, 256 }, { 0, 256 } });
BAD(bar_smaller_than_slice, EINVAL, .region = VFIO_PCI_BAR0_REGION_INDEX,
    .r = { { 0, 2 * SZ_4K } });
BAD(length_zero, EINVAL, .r = { { 0, 0 } });
BAD(offset_unaligned, EINVAL, .r = { { 512, SZ_4K } });
BAD(length_unaligned, EINVAL, .r = { { 0, 100 } });
BAD(past_bar_end, EINVAL, .r = { { BAR_END, SZ_4K } });
BAD(straddles_bar_end, EINVAL, .r = { { BAR_END - SZ_4K, 2 * SZ_4K } });
/* The sum of lengths is checked before any address, as in mainline. */
BAD(lengths_sum_bit63_before_address, EINVAL, .nr = 2, .argsz_nr = 2,
    .r = { { ~0ull - SZ_4K + 1, 1ull << 62 }, { 0, 1ull << 62 } });
BAD(lengths_sum_overflows_before_address, EINVAL, .nr = 2, .argsz_nr = 2,
    .r = { { ~0ull - SZ_4K + 1, 1ull << 63 }, { 0, 1ull << 63 } });
BAD(address_overflow, EOVERFLOW, .r = { { ~0ull - SZ_4K + 1, SZ_4K } });
BAD(too_many_ranges, E2BIG, .nr = 65537);
BAD(argsz_short_of_ranges, EINVAL, .nr = 2, .argsz_nr = 1);
BAD(open_flags_unknown, EINVAL, .open_flags = O_RDWR | O_APPEND);
BAD(open_flags_accmode, EINVAL, .open_flags = O_ACCMODE);

TEST_F(rules, feature)
{
	struct vfio_region_dma_range r[2];
	int before = count_fds(), ret, i;

	memcpy(r, variant->r, sizeof(r));
	for (i = 0; i < 2; i++)
		if (r[i].offset >= BAR_END >> 1 && r[i].offset <= BAR_END)
			r[i].offset = self->v.bar_size - (BAR_END - r[i].offset);
	ret = export_ranges(self->v.device, variant->region, variant->open_flags,
			    variant->flags, variant->nr, r, variant->argsz_nr);
	if (!variant->want_errno) {
		ASSERT_GE(ret, 0);
		close(ret);
	} else {
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(variant->want_errno, errno) TH_LOG("errno %d (%s)", errno, strerror(errno));
	}
	EXPECT_EQ(before, count_fds()) TH_LOG("a file descriptor leaked");
}

TEST_F(dev, open_flags_honoured)
{
	struct vfio_region_dma_range r = { 0, SZ_4K };
	int fd;

	fd = export_ranges(self->v.device, BAR, O_RDWR | O_CLOEXEC, 0, 1, &r, 1);
	ASSERT_GE(fd, 0);
	EXPECT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(O_RDWR, fcntl(fd, F_GETFL) & O_ACCMODE);
	close(fd);

	fd = export_ranges(self->v.device, BAR, O_RDONLY, 0, 1, &r, 1);
	ASSERT_GE(fd, 0);
	EXPECT_EQ(0, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(O_RDONLY, fcntl(fd, F_GETFL) & O_ACCMODE);
	close(fd);
}

/* Is [@start, @start + @size) claimed in /proc/iomem by an owner named @owner*? */
static int iomem_claimed(uint64_t start, uint64_t size, const char *owner)
{
	unsigned long long s, e;
	char line[256], name[64];
	FILE *f = fopen("/proc/iomem", "r");
	int found = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " %llx-%llx : %63[^\n]", &s, &e, name) == 3 &&
		    s == start && e == start + size - 1 &&
		    !strncmp(name, owner, strlen(owner)))
			found = 1;
	fclose(f);
	return found;
}

/* Export claims the BAR for vfio, as region access does, before any. */
TEST_F(dev, export_claims_bar)
{
	struct vfio_region_dma_range r = { SZ_64K, SZ_4K };
	uint64_t start, size;
	int fd;

	ASSERT_EQ(0, bar_resource(self->v.bdf, BAR, &start, &size));
	ASSERT_EQ(0, iomem_claimed(start, size, "vfio"))
		TH_LOG("the BAR was claimed before any access");
	fd = export_ranges(self->v.device, BAR, O_RDWR, 0, 1, &r, 1);
	ASSERT_GE(fd, 0);
	EXPECT_EQ(1, iomem_claimed(start, size, "vfio"))
		TH_LOG("the BAR was exported without being claimed");
	close(fd);
}

/*
 * A BAR another owner has claimed part of is the user's neither to read
 * nor to export: both fail with EBUSY, and both work once it lets go.
 */
TEST_F(dev, export_of_bar_claimed_elsewhere_refused)
{
	struct vfio_region_dma_range r = { SZ_64K, SZ_4K };
	char cmd[128];
	uint8_t byte;
	int fd;

	snprintf(cmd, sizeof(cmd), "modprobe bar_claimer dev=%s bar=%d",
		 self->v.bdf, BAR);
	ASSERT_EQ(0, system(cmd));
	EXPECT_EQ(-1, pread(self->v.device, &byte, 1, self->v.bar_off + SZ_64K));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, export_ranges(self->v.device, BAR, O_RDWR, 0, 1, &r, 1));
	EXPECT_EQ(EBUSY, errno);
	ASSERT_EQ(0, system("rmmod bar_claimer"));

	fd = export_ranges(self->v.device, BAR, O_RDWR, 0, 1, &r, 1);
	EXPECT_GE(fd, 0);
	close(fd);
}

/* A read-only dma-buf maps shared and read-only; writable maps fail. */
TEST_F(dev, read_only_dmabuf_maps_read_only)
{
	struct vfio_region_dma_range r = { SZ_64K, SZ_4K };
	uint8_t *dbuf, *region, want[64];
	int fd;

	fd = export_ranges(self->v.device, BAR, O_RDONLY, 0, 1, &r, 1);
	ASSERT_GE(fd, 0);
	region = mmap(NULL, 2 * SZ_64K, PROT_READ | PROT_WRITE, MAP_SHARED,
		      self->v.device, self->v.bar_off);
	ASSERT_NE(MAP_FAILED, region);
	fill(want, sizeof(want), 3);
	memcpy(region + SZ_64K, want, sizeof(want));

	dbuf = mmap(NULL, SZ_4K, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, dbuf) TH_LOG("mmap of a read-only dma-buf: %s", strerror(errno));
	EXPECT_EQ(0, memcmp(dbuf, want, sizeof(want)));
	EXPECT_EQ(-1, mprotect(dbuf, SZ_4K, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	munmap(dbuf, SZ_4K);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, SZ_4K, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
	EXPECT_EQ(EACCES, errno);
	munmap(region, 2 * SZ_64K);
	close(fd);
}

TEST_F(dev, fdinfo_describes_buffer)
{
	struct vfio_region_dma_range r[2] = { { SZ_64K, SZ_4K }, { 0, 2 * SZ_4K } };
	char val[128];
	int fd;

	fd = export_ranges(self->v.device, BAR, O_RDWR, 0, 2, r, 2);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, fdinfo(fd, "size:\t", val, sizeof(val)));
	EXPECT_STREQ("12288", val);
	ASSERT_EQ(0, fdinfo(fd, "vfio-pci-dev:\t", val, sizeof(val)));
	EXPECT_STREQ(self->v.bdf, val);
	ASSERT_EQ(0, fdinfo(fd, "vfio-pci-bar:\t", val, sizeof(val)));
	EXPECT_STREQ("2", val);
	ASSERT_EQ(0, fdinfo(fd, "vfio-pci-range:\t", val, sizeof(val)));
	EXPECT_STREQ("0x10000+0x1000", val);
	ASSERT_EQ(0, fdinfo(fd, "vfio-pci-revoked:\t", val, sizeof(val)));
	EXPECT_STREQ("0", val);

	ASSERT_EQ(0, set_memory_decode(&self->v, 0));
	ASSERT_EQ(0, fdinfo(fd, "vfio-pci-revoked:\t", val, sizeof(val)));
	EXPECT_STREQ("1", val);
	ASSERT_EQ(0, set_memory_decode(&self->v, 1));
	ASSERT_EQ(0, fdinfo(fd, "vfio-pci-revoked:\t", val, sizeof(val)));
	EXPECT_STREQ("0", val);
	close(fd);
}

/* Bytes through the dma-buf mmap show in the vfio region mmap, and back. */
TEST_F(dev, mmap_round_trip)
{
	struct vfio_region_dma_range r[2] = { { 3 * SZ_64K, SZ_4K }, { SZ_64K, 2 * SZ_4K } };
	size_t len = 3 * SZ_4K, i;
	uint8_t *dbuf, *region, want[3 * 4096];
	int fd;

	fd = export_ranges(self->v.device, BAR, O_RDWR, 0, 2, r, 2);
	ASSERT_GE(fd, 0);
	dbuf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, dbuf);
	region = mmap(NULL, 4 * SZ_64K, PROT_READ | PROT_WRITE, MAP_SHARED,
		      self->v.device, self->v.bar_off);
	ASSERT_NE(MAP_FAILED, region);

	fill(want, len, 1);
	memcpy(dbuf, want, len);
	EXPECT_EQ(0, memcmp(region + 3 * SZ_64K, want, SZ_4K));
	EXPECT_EQ(0, memcmp(region + SZ_64K, want + SZ_4K, 2 * SZ_4K));

	fill(want, len, 2);
	memcpy(region + 3 * SZ_64K, want, SZ_4K);
	memcpy(region + SZ_64K, want + SZ_4K, 2 * SZ_4K);
	for (i = 0; i < len; i++)
		if (dbuf[i] != want[i])
			break;
	EXPECT_EQ(len, i) TH_LOG("first difference at byte %zu", i);

	/* A private mapping is refused: writes could never reach the BAR. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, SZ_4K, PROT_READ, MAP_PRIVATE, fd, 0));
	munmap(region, 4 * SZ_64K);
	munmap(dbuf, len);
	close(fd);
}

#define IVSHMEM_INTRMASK	0	/* BAR 0 registers */
#define IVSHMEM_IVPOSITION	8

/* A BAR smaller than a page exports the page it owns, for mmap too. */
TEST_F(dev, subpage_bar_exports_its_page)
{
	struct vfio_region_dma_range r = { 0, 256 };
	uint32_t reg, val;
	volatile uint32_t *regs;
	char buf[32];
	int fd;

	/* The rule applies where vfio-pci lets the user mmap the BAR. */
	ASSERT_NE(0, region_flags(self->v.device, VFIO_PCI_BAR0_REGION_INDEX) &
		  VFIO_REGION_INFO_FLAG_MMAP) TH_LOG("BAR 0 is not mmap-able here");
	fd = export_ranges(self->v.device, VFIO_PCI_BAR0_REGION_INDEX, O_RDWR, 0, 1, &r, 1);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, fdinfo(fd, "size:\t", buf, sizeof(buf)));
	EXPECT_STREQ("4096", buf);
	ASSERT_EQ(0, fdinfo(fd, "vfio-pci-range:\t", buf, sizeof(buf)));
	EXPECT_STREQ("0x0+0x1000", buf);
	regs = mmap(NULL, SZ_4K, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, regs);

	/* The registers through the dma-buf are those of the vfio region. */
	ASSERT_EQ(4, pread(self->v.device, &reg, 4, IVSHMEM_IVPOSITION));
	EXPECT_EQ(reg, regs[IVSHMEM_IVPOSITION / 4]);
	regs[IVSHMEM_INTRMASK / 4] = 0x5a5a0001;
	ASSERT_EQ(4, pread(self->v.device, &val, 4, IVSHMEM_INTRMASK));
	EXPECT_EQ(0x5a5a0001, val);
	val = 0;
	ASSERT_EQ(4, pwrite(self->v.device, &val, 4, IVSHMEM_INTRMASK));
	EXPECT_EQ(0, regs[IVSHMEM_INTRMASK / 4]);
	/* The buffer is one page: nothing maps past it. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * SZ_4K, PROT_READ, MAP_SHARED, fd, 0));
	munmap((void *)regs, SZ_4K);
	close(fd);
}

/* Random feature ioctls: only documented errnos, nothing left behind. */
TEST_F(dev, fuzz_feature)
{
	static const int allowed[] = { EINVAL, ENODEV, E2BIG, EOVERFLOW };
	struct vfio_region_dma_range r[8];
	int before = count_fds(), ok = 0, fail = 0, iter, i, k;
	unsigned int seed = 20261120;

	for (iter = 0; iter < 20000; iter++) {
		uint32_t nr = rand_r(&seed) % 10, region = rand_r(&seed) % 10;
		uint32_t argsz_nr = nr > 8 ? 8 : nr, flags = 0, oflags = O_RDWR;
		int ret;

		if (rand_r(&seed) % 16 == 0)
			flags = rand_r(&seed);
		if (rand_r(&seed) % 16 == 0)
			oflags = rand_r(&seed);
		if (rand_r(&seed) % 32 == 0)
			nr = rand_r(&seed);
		if (region > 6 && rand_r(&seed) % 2)
			region = BAR;
		for (i = 0; i < 8; i++) {
			uint64_t pages = self->v.bar_size / SZ_4K;

			switch (rand_r(&seed) % 4) {
			case 0: /* valid slice */
				r[i].offset = (rand_r(&seed) % pages) * SZ_4K;
				r[i].length = SZ_4K * (1 + rand_r(&seed) % 4);
				if (r[i].offset + r[i].length > self->v.bar_size)
					r[i].offset = 0;
				break;
			case 1: /* unaligned */
				r[i].offset = rand_r(&seed);
				r[i].length = rand_r(&seed);
				break;
			case 2: /* huge */
				r[i].offset = ((uint64_t)rand_r(&seed) << 33) | (rand_r(&seed) & ~0xfffu);
				r[i].length = ((uint64_t)rand_r(&seed) << 33) & ~0xfffull;
				break;
			default: /* empty or edge */
				r[i].offset = self->v.bar_size - SZ_4K * (rand_r(&seed) % 2);
				r[i].length = SZ_4K * (rand_r(&seed) % 2);
			}
		}
		ret = export_ranges(self->v.device, region, oflags, flags, nr, r, argsz_nr);
		if (ret >= 0) {
			ok++;
			close(ret);
			continue;
		}
		fail++;
		for (k = 0; k < (int)(sizeof(allowed) / sizeof(allowed[0])); k++)
			if (errno == allowed[k])
				break;
		ASSERT_LT(k, (int)(sizeof(allowed) / sizeof(allowed[0])))
			TH_LOG("iteration %d: undocumented errno %d", iter, errno);
	}
	TH_LOG("%d exports, %d refusals", ok, fail);
	EXPECT_GT(ok, 0);
	EXPECT_GT(fail, 0);
	EXPECT_EQ(before, count_fds());
}

/* ---- importing for edu: P2P ---- */

FIXTURE(p2p) {
	struct vdev v;
	int imp, dmabuf;
	uint32_t api;		/* IMP_API_* of the importer's attachment */
	uint8_t *region;
};

#define SLICE0_OFF	SZ_1M
#define SLICE0_LEN	SZ_1M
#define SLICE1_OFF	0
#define SLICE1_LEN	(2 * SZ_64K)
#define DMABUF_LEN	(SLICE0_LEN + SLICE1_LEN)

FIXTURE_SETUP(p2p)
{
	struct vfio_region_dma_range r[2] = {
		{ SLICE0_OFF, SLICE0_LEN }, { SLICE1_OFF, SLICE1_LEN },
	};

	self->imp = self->dmabuf = -1;
	ASSERT_EQ(0, vfio_open(&self->v));
	self->dmabuf = export_ranges(self->v.device, BAR, O_RDWR | O_CLOEXEC,
				     0, 2, r, 2);
	ASSERT_GE(self->dmabuf, 0);
	self->region = mmap(NULL, 2 * SZ_1M, PROT_READ | PROT_WRITE, MAP_SHARED,
			    self->v.device, self->v.bar_off);
	ASSERT_NE(MAP_FAILED, self->region);
	self->imp = open_importer();
	ASSERT_GE(self->imp, 0);
}

FIXTURE_TEARDOWN(p2p)
{
	if (self->imp >= 0)
		close(self->imp);
	if (self->region && self->region != MAP_FAILED)
		munmap(self->region, 2 * SZ_1M);
	if (self->dmabuf >= 0)
		close(self->dmabuf);
	vfio_close(&self->v);
}

static int reachable(void)
{
	return strcmp(topo(), "noreach") != 0;
}

#define FULL (IMP_DYNAMIC | IMP_P2P | IMP_REVOCABLE)

/* The attach flags of an importer that maps through @api. */
#define FULL_FOR(api) (FULL | ((api) == IMP_API_SGT ? IMP_SGT : 0))

/*
 * Attach edu as an importer of @api's kind and map, or stop the test where
 * no P2P path exists.
 */
#define ATTACH_AND_MAP(api_) do { \
	uint32_t n_ = 0; \
	if (!reachable()) \
		SKIP(return, "no P2P path in this topology (see attach_follows_topology)"); \
	self->api = (api_); \
	ASSERT_EQ(0, imp_attach(self->imp, self->dmabuf, FULL_FOR(api_))); \
	ASSERT_EQ(0, imp_map(self->imp, api_, 0, NULL, &n_)); \
} while (0)

TEST_F(p2p, attach_follows_topology)
{
	EXPECT_EQ(reachable() ? 0 : -EOPNOTSUPP,
		  imp_attach(self->imp, self->dmabuf, FULL)) TH_LOG("topology %s", topo());
}

TEST_F(p2p, attach_needs_peer2peer)
{
	EXPECT_EQ(-EOPNOTSUPP, imp_attach(self->imp, self->dmabuf, 0));
	EXPECT_EQ(-EOPNOTSUPP, imp_attach(self->imp, self->dmabuf, IMP_DYNAMIC));
}

/* Lines in the kernel log that P2P path lookups print. */
static int p2p_log_lines(void)
{
	FILE *f = popen("dmesg | grep -c -e peer-to-peer -e 'ACS redirect' -e 'P2PDMA whitelist'", "r");
	int n = -1;

	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

/*
 * Attaching asks the PCI core for the P2P path every time; a user looping
 * attaches must not fill the kernel log (on noreach every attach is
 * refused for want of a whitelisted host bridge).
 */
TEST_F(p2p, attach_loop_stays_out_of_the_log)
{
	int before = p2p_log_lines(), i;

	ASSERT_LE(0, before);
	for (i = 0; i < 50; i++) {
		EXPECT_EQ(reachable() ? 0 : -EOPNOTSUPP,
			  imp_attach(self->imp, self->dmabuf, FULL));
		ioctl(self->imp, IMP_DETACH);
	}
	EXPECT_EQ(before, p2p_log_lines()) TH_LOG("attaches logged P2P path lines");
}

/*
 * A revoke must end every importer's DMA before it returns, so only
 * importers that give their mappings back within move_notify attach, as
 * sg_table and as range importers, whatever CONFIG_DMABUF_MOVE_NOTIFY
 * says; those that do may also pin.
 */
TEST_F(p2p, attach_needs_revocable_importer)
{
	int move_notify = kconfig_y("CONFIG_DMABUF_MOVE_NOTIFY");
	uint32_t nr = 0;

	if (!reachable())
		SKIP(return, "no P2P path in this topology");
	ASSERT_EQ(0, access("/proc/config.gz", R_OK));
	TH_LOG("CONFIG_DMABUF_MOVE_NOTIFY=%s", move_notify ? "y" : "n");
	EXPECT_EQ(-EOPNOTSUPP,
		  imp_attach(self->imp, self->dmabuf, IMP_DYNAMIC | IMP_P2P));
	EXPECT_EQ(-EOPNOTSUPP,
		  imp_attach(self->imp, self->dmabuf,
			     IMP_DYNAMIC | IMP_P2P | IMP_SGT));

	ASSERT_EQ(0, imp_attach(self->imp, self->dmabuf, FULL));
	EXPECT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 1, NULL, &nr));
	EXPECT_EQ(2, nr);
	EXPECT_EQ(1, imp_status(self->imp).mapped);
}

/* The importer maps only through the kind it attached as. */
TEST_F(p2p, map_through_attached_kind_only)
{
	uint32_t nr = 0;

	if (!reachable())
		SKIP(return, "no P2P path in this topology");
	ASSERT_EQ(0, imp_attach(self->imp, self->dmabuf, FULL));
	EXPECT_EQ(-EINVAL, imp_map(self->imp, IMP_API_SGT, 0, NULL, &nr));
	EXPECT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));
	ASSERT_EQ(0, ioctl(self->imp, IMP_DETACH));
	ASSERT_EQ(0, imp_attach(self->imp, self->dmabuf, FULL | IMP_SGT));
	nr = 0;
	EXPECT_EQ(-EINVAL, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));
	EXPECT_EQ(0, imp_map(self->imp, IMP_API_SGT, 0, NULL, &nr));
}

TEST_F(p2p, ranges_are_device_addresses)
{
	struct imp_range r[4];
	uint32_t nr = 4;

	if (!reachable())
		SKIP(return, "no P2P path in this topology");
	ASSERT_EQ(0, imp_attach(self->imp, self->dmabuf, FULL));
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, r, &nr));
	ASSERT_EQ(2, nr);
	EXPECT_EQ(SLICE0_LEN, r[0].len);
	EXPECT_EQ(SLICE1_LEN, r[1].len);
	if (!strcmp(topo(), "switch")) {
		/* Bus addresses; q35 has no host-to-PCI offset. */
		EXPECT_EQ(self->v.bar_phys + SLICE0_OFF, r[0].addr);
		EXPECT_EQ(self->v.bar_phys + SLICE1_OFF, r[1].addr);
	} else {
		/* IOVAs from the IOMMU, not the BAR's address. */
		EXPECT_NE(self->v.bar_phys + SLICE0_OFF, r[0].addr);
		EXPECT_EQ(0, r[0].addr % SZ_4K);
		EXPECT_EQ(0, r[1].addr % SZ_4K);
	}
	TH_LOG("%s: BAR at %#llx, ranges %#llx+%#llx %#llx+%#llx", topo(),
	       (unsigned long long)self->v.bar_phys,
	       (unsigned long long)r[0].addr, (unsigned long long)r[0].len,
	       (unsigned long long)r[1].addr, (unsigned long long)r[1].len);
}

TEST_F(p2p, sg_table_through_core_shim)
{
	const uint32_t slice1 = SLICE0_LEN / SZ_64K;
	struct imp_range r[64];
	uint32_t nr = 64, i;
	uint64_t total = 0;

	if (!reachable())
		SKIP(return, "no P2P path in this topology");
	ASSERT_EQ(0, imp_attach(self->imp, self->dmabuf, FULL | IMP_SGT));
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_SGT, 0, r, &nr));
	/* edu's max segment is the PCI default of 64 KiB. */
	ASSERT_EQ(DMABUF_LEN / SZ_64K, nr);
	for (i = 0; i < nr; i++) {
		EXPECT_EQ(SZ_64K, r[i].len);
		if (i && i != slice1)
			EXPECT_EQ(r[i - 1].addr + SZ_64K, r[i].addr);
		total += r[i].len;
	}
	EXPECT_EQ(DMABUF_LEN, total);
	if (!strcmp(topo(), "switch")) {
		EXPECT_EQ(self->v.bar_phys + SLICE0_OFF, r[0].addr);
		EXPECT_EQ(self->v.bar_phys + SLICE1_OFF, r[slice1].addr);
	}
}

/* edu DMAs a pattern into the dma-buf and back; check through vfio. */
static void dma_round_trip(struct __test_metadata *_metadata,
			   FIXTURE_DATA(p2p) *self, unsigned int seed)
{
	/* Offsets in the dma-buf and where they land in the BAR. */
	static const struct { uint64_t dmabuf, bar; } at[] = {
		{ 0, SLICE0_OFF },
		{ SLICE0_LEN - 2048, SLICE0_OFF + SLICE0_LEN - 2048 },
		{ SLICE0_LEN + 4096, SLICE1_OFF + 4096 },
	};
	uint8_t want[2048], got[2048];
	unsigned int i;

	for (i = 0; i < 3; i++) {
		fill(want, sizeof(want), seed + i);
		ASSERT_EQ(0, imp_dma(self->imp, at[i].dmabuf, want, sizeof(want), 1));
		EXPECT_EQ(0, memcmp(self->region + at[i].bar, want, sizeof(want)))
			TH_LOG("edu -> BAR at dma-buf offset %#llx", (unsigned long long)at[i].dmabuf);

		fill(want, sizeof(want), seed + 100 + i);
		memcpy(self->region + at[i].bar, want, sizeof(want));
		memset(got, 0, sizeof(got));
		ASSERT_EQ(0, imp_dma(self->imp, at[i].dmabuf, got, sizeof(got), 0));
		EXPECT_EQ(0, memcmp(got, want, sizeof(want)))
			TH_LOG("BAR -> edu at dma-buf offset %#llx", (unsigned long long)at[i].dmabuf);
	}
}

TEST_F(p2p, dma_through_ranges)
{
	ATTACH_AND_MAP(IMP_API_RANGES);
	dma_round_trip(_metadata, self, 10);
}

TEST_F(p2p, dma_through_sg_table)
{
	ATTACH_AND_MAP(IMP_API_SGT);
	dma_round_trip(_metadata, self, 20);
}

TEST_F(p2p, dma_refused_across_ranges)
{
	uint8_t buf[2048];

	ATTACH_AND_MAP(IMP_API_RANGES);
	EXPECT_EQ(-EINVAL, imp_dma(self->imp, SLICE0_LEN - 1024, buf, sizeof(buf), 1));
	EXPECT_EQ(-EINVAL, imp_dma(self->imp, DMABUF_LEN, buf, 64, 1));
}

/*
 * A doorbell write peer to peer: edu DMA-writes a register of ivshmem's
 * 256-byte BAR 0 through the ranges of its dma-buf; a revoke stops it
 * like any other.
 */
TEST_F(p2p, doorbell_write_to_subpage_bar)
{
	struct vfio_region_dma_range r = { 0, 256 };
	uint32_t doorbell = 0x00c0ffee, got = 0, nr = 0;
	struct imp_range range;

	if (!reachable())
		SKIP(return, "no P2P path in this topology");
	ASSERT_NE(0, region_flags(self->v.device, VFIO_PCI_BAR0_REGION_INDEX) &
		  VFIO_REGION_INFO_FLAG_MMAP) TH_LOG("BAR 0 is not mmap-able here");
	close(self->dmabuf);
	self->dmabuf = export_ranges(self->v.device, VFIO_PCI_BAR0_REGION_INDEX,
				     O_RDWR, 0, 1, &r, 1);
	ASSERT_GE(self->dmabuf, 0);
	ASSERT_EQ(0, imp_attach(self->imp, self->dmabuf, FULL));
	nr = 1;
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, &range, &nr));
	ASSERT_EQ(1, nr);
	EXPECT_EQ(SZ_4K, range.len);
	if (!strcmp(topo(), "switch"))
		EXPECT_EQ(bar_phys(self->v.bdf, 0), range.addr);

	ASSERT_EQ(4, pwrite(self->v.device, &got, 4, IVSHMEM_INTRMASK));
	ASSERT_EQ(0, imp_dma(self->imp, IVSHMEM_INTRMASK, &doorbell, 4, 1));
	ASSERT_EQ(4, pread(self->v.device, &got, 4, IVSHMEM_INTRMASK));
	EXPECT_EQ(doorbell, got) TH_LOG("the doorbell write did not reach the register");

	/* The same through the core's sg_table for legacy importers. */
	ASSERT_EQ(0, ioctl(self->imp, IMP_DETACH));
	ASSERT_EQ(0, imp_attach(self->imp, self->dmabuf, FULL | IMP_SGT));
	nr = 1;
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_SGT, 0, &range, &nr));
	ASSERT_EQ(1, nr);
	EXPECT_EQ(SZ_4K, range.len);
	doorbell = 0x00beef00;
	ASSERT_EQ(0, imp_dma(self->imp, IVSHMEM_INTRMASK, &doorbell, 4, 1));
	ASSERT_EQ(4, pread(self->v.device, &got, 4, IVSHMEM_INTRMASK));
	EXPECT_EQ(doorbell, got) TH_LOG("the doorbell write through the sg_table was lost");

	ASSERT_EQ(0, set_memory_decode(&self->v, 0));
	EXPECT_EQ(0, imp_status(self->imp).mapped);
	EXPECT_EQ(-ENODEV, imp_dma(self->imp, IVSHMEM_INTRMASK, &doorbell, 4, 1));
	ASSERT_EQ(0, set_memory_decode(&self->v, 1));
	nr = 0;
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_SGT, 0, NULL, &nr));
	doorbell = 0;
	ASSERT_EQ(0, imp_dma(self->imp, IVSHMEM_INTRMASK, &doorbell, 4, 1));
	ASSERT_EQ(4, pread(self->v.device, &got, 4, IVSHMEM_INTRMASK));
	EXPECT_EQ(0, got);
}

/* After a revoke: no mapping, no DMA, no CPU access. */
static void expect_revoked(struct __test_metadata *_metadata,
			   FIXTURE_DATA(p2p) *self, uint8_t *cpu)
{
	struct imp_status before = imp_status(self->imp), after;
	uint8_t buf[64] = {};
	uint32_t nr = 0;

	EXPECT_EQ(0, before.mapped);
	EXPECT_EQ(-ENODEV, imp_map(self->imp, self->api, 0, NULL, &nr));
	EXPECT_EQ(-ENODEV, imp_dma(self->imp, 0, buf, sizeof(buf), 1));
	after = imp_status(self->imp);
	EXPECT_EQ(before.dma_count, after.dma_count) TH_LOG("DMA issued while revoked");
	if (cpu)
		EXPECT_EQ(1, faults(cpu)) TH_LOG("CPU access while revoked did not fault");
}

TEST_F(p2p, revoke_by_memory_disable)
{
	uint8_t *cpu;
	uint32_t moves, nr = 0;

	ATTACH_AND_MAP(IMP_API_RANGES);
	cpu = mmap(NULL, SZ_4K, PROT_READ, MAP_SHARED, self->dmabuf, 0);
	ASSERT_NE(MAP_FAILED, cpu);
	EXPECT_EQ(0, faults(cpu));
	moves = imp_status(self->imp).moves;

	ASSERT_EQ(0, set_memory_decode(&self->v, 0));
	EXPECT_EQ(moves + 1, imp_status(self->imp).moves);
	expect_revoked(_metadata, self, cpu);

	ASSERT_EQ(0, set_memory_decode(&self->v, 1));
	/* A range importer gets no restore notice: it maps when it needs to. */
	EXPECT_EQ(moves + 1, imp_status(self->imp).moves);
	EXPECT_EQ(0, faults(cpu));
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));
	dma_round_trip(_metadata, self, 30);
	munmap(cpu, SZ_4K);
}

TEST_F(p2p, revoke_by_reset)
{
	uint32_t moves, nr = 0;

	if (!(self->v.flags & VFIO_DEVICE_FLAGS_RESET))
		SKIP(return, "the device has no reset method in this topology");
	ATTACH_AND_MAP(IMP_API_RANGES);
	moves = imp_status(self->imp).moves;
	ASSERT_EQ(0, ioctl(self->v.device, VFIO_DEVICE_RESET));
	/* Revoked for the reset, given back after it, silently. */
	EXPECT_EQ(moves + 1, imp_status(self->imp).moves);
	EXPECT_EQ(0, imp_status(self->imp).mapped);
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));
	dma_round_trip(_metadata, self, 40);
}

#define SLOW_MS		1000

/*
 * A reset from outside vfio (sysfs, by @method, or the device's default
 * methods) revokes first and waits for an importer that lets go late,
 * then gives access back: the PCI core restored decode.
 */
static void sysfs_reset_revokes(struct __test_metadata *_metadata,
				FIXTURE_DATA(p2p) *self, const char *method)
{
	char method_path[128], reset_path[128], methods[128] = "";
	uint32_t moves, nr = 0;
	double t0, ms;

	snprintf(method_path, sizeof(method_path),
		 "/sys/bus/pci/devices/%s/reset_method", self->v.bdf);
	snprintf(reset_path, sizeof(reset_path),
		 "/sys/bus/pci/devices/%s/reset", self->v.bdf);
	if (!(self->v.flags & VFIO_DEVICE_FLAGS_RESET) ||
	    read_file(method_path, methods, sizeof(methods)) ||
	    (method && !strstr(methods, method)))
		SKIP(return, "no %s reset of the device in this topology (%s)",
		     method ?: "sysfs", methods);
	ATTACH_AND_MAP(IMP_API_RANGES);
	ASSERT_EQ(0, imp_slow(self->imp, IMP_SLOW_UNMAP, SLOW_MS));
	moves = imp_status(self->imp).moves;
	if (method)
		ASSERT_EQ(0, write_file(method_path, method));
	t0 = now_ms();
	EXPECT_EQ(0, write_file(reset_path, "1"));
	ms = now_ms() - t0;
	if (method)
		ASSERT_EQ(0, write_file(method_path, "default"));
	EXPECT_EQ(moves + 1, imp_status(self->imp).moves);
	EXPECT_EQ(0, imp_status(self->imp).mapped);
	EXPECT_GE(ms, 0.9 * SLOW_MS) TH_LOG("%.0f ms: the reset did not wait for the importer", ms);
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));
	dma_round_trip(_metadata, self, 45);
}

TEST_F(p2p, revoke_by_sysfs_reset)
{
	sysfs_reset_revokes(_metadata, self, NULL);
}

/* The secondary bus reset of the bridge above the device. */
TEST_F(p2p, revoke_by_bus_reset)
{
	sysfs_reset_revokes(_metadata, self, "bus");
}

TEST_F(p2p, revoke_by_close)
{
	char val[16];
	uint8_t *cpu;
	uint32_t moves;

	ATTACH_AND_MAP(IMP_API_SGT);
	cpu = mmap(NULL, SZ_4K, PROT_READ, MAP_SHARED, self->dmabuf, 0);
	ASSERT_NE(MAP_FAILED, cpu);
	moves = imp_status(self->imp).moves;
	munmap(self->region, 2 * SZ_1M);
	self->region = NULL;
	vfio_close(&self->v);
	EXPECT_EQ(moves + 1, imp_status(self->imp).moves);
	expect_revoked(_metadata, self, cpu);
	ASSERT_EQ(0, fdinfo(self->dmabuf, "vfio-pci-revoked:\t", val, sizeof(val)));
	EXPECT_STREQ("1", val);
	munmap(cpu, SZ_4K);
}

/* Exported while decode is off: revoked from the start, usable after. */
TEST_F(p2p, export_while_decode_off_starts_revoked)
{
	struct vfio_region_dma_range r = { 0, SZ_64K };
	uint8_t want[2048], *cpu;
	uint32_t moves, nr = 0;
	char val[16];

	if (!reachable())
		SKIP(return, "no P2P path in this topology");
	close(self->dmabuf);
	ASSERT_EQ(0, set_memory_decode(&self->v, 0));
	self->dmabuf = export_ranges(self->v.device, BAR, O_RDWR, 0, 1, &r, 1);
	ASSERT_GE(self->dmabuf, 0);
	ASSERT_EQ(0, fdinfo(self->dmabuf, "vfio-pci-revoked:\t", val, sizeof(val)));
	EXPECT_STREQ("1", val);
	cpu = mmap(NULL, SZ_4K, PROT_READ, MAP_SHARED, self->dmabuf, 0);
	ASSERT_NE(MAP_FAILED, cpu);
	EXPECT_EQ(1, faults(cpu));
	/* An importer may attach; it cannot map until decode returns. */
	ASSERT_EQ(0, imp_attach(self->imp, self->dmabuf, FULL));
	moves = imp_status(self->imp).moves;
	EXPECT_EQ(-ENODEV, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));

	ASSERT_EQ(0, set_memory_decode(&self->v, 1));
	/* Access is back silently: a range importer maps when it needs to. */
	EXPECT_EQ(moves, imp_status(self->imp).moves) TH_LOG("a restore notice reached a range importer");
	EXPECT_EQ(0, faults(cpu));
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));
	EXPECT_EQ(1, nr);
	fill(want, sizeof(want), 50);
	ASSERT_EQ(0, imp_dma(self->imp, SZ_4K, want, sizeof(want), 1));
	EXPECT_EQ(0, memcmp(self->region + SZ_4K, want, sizeof(want)));
	munmap(cpu, SZ_4K);
}

#define NR_SLOW		4

/*
 * Importers that give their mappings back late: a revoke of several
 * dma-bufs tells every importer first and then waits once, so it costs
 * one importer's delay, not one per dma-buf.
 */
TEST_F(p2p, revoke_waits_once_for_slow_importers)
{
	int fds[NR_SLOW], imps[NR_SLOW], i;
	double t0, ms;

	if (!reachable())
		SKIP(return, "no P2P path in this topology");
	for (i = 0; i < NR_SLOW; i++) {
		struct vfio_region_dma_range r = { i * SZ_64K, SZ_64K };
		uint32_t nr = 0;

		fds[i] = export_ranges(self->v.device, BAR, O_RDWR, 0, 1, &r, 1);
		ASSERT_GE(fds[i], 0);
		imps[i] = open_importer();
		ASSERT_GE(imps[i], 0);
		ASSERT_EQ(0, imp_attach(imps[i], fds[i], FULL));
		ASSERT_EQ(0, imp_slow(imps[i], IMP_SLOW_UNMAP, SLOW_MS));
		ASSERT_EQ(0, imp_map(imps[i], IMP_API_RANGES, 0, NULL, &nr));
	}
	t0 = now_ms();
	ASSERT_EQ(0, set_memory_decode(&self->v, 0));
	ms = now_ms() - t0;
	for (i = 0; i < NR_SLOW; i++)
		EXPECT_EQ(0, imp_status(imps[i]).mapped)
			TH_LOG("importer %d still maps after the revoke returned", i);
	EXPECT_GE(ms, 0.9 * SLOW_MS) TH_LOG("the revoke did not wait for the importers");
	EXPECT_LT(ms, 2 * SLOW_MS) TH_LOG("%.0f ms: one wait per dma-buf", ms);
	TH_LOG("revoking %d dma-bufs with importers %d ms late took %.0f ms",
	       NR_SLOW, SLOW_MS, ms);
	ASSERT_EQ(0, set_memory_decode(&self->v, 1));
	for (i = 0; i < NR_SLOW; i++) {
		close(imps[i]);
		close(fds[i]);
	}
}

/* DMA an importer queued before move_notify is waited for too. */
TEST_F(p2p, revoke_waits_for_importer_fences)
{
	double t0, ms;

	ATTACH_AND_MAP(IMP_API_RANGES);
	ASSERT_EQ(0, imp_slow(self->imp, IMP_SLOW_FENCE, SLOW_MS));
	t0 = now_ms();
	ASSERT_EQ(0, set_memory_decode(&self->v, 0));
	ms = now_ms() - t0;
	EXPECT_EQ(0, imp_status(self->imp).mapped);
	EXPECT_GE(ms, 0.9 * SLOW_MS) TH_LOG("the revoke returned before the importer's fence signalled");
	EXPECT_LT(ms, 2 * SLOW_MS);
	ASSERT_EQ(0, set_memory_decode(&self->v, 1));
}

/* The calls by which the user takes BAR access away. */
enum user_revoke { BY_DECODE_OFF, BY_RESET, BY_LOW_POWER, BY_HOT_RESET };

static int user_revoke(FIXTURE_DATA(p2p) *self, enum user_revoke by)
{
	struct vfio_device_feature feat = {
		.argsz = sizeof(feat),
		.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
	};
	struct vfio_pci_hot_reset *hr;
	size_t size = sizeof(*hr) + sizeof(__s32);
	int ret;

	switch (by) {
	case BY_DECODE_OFF:
		return set_memory_decode(&self->v, 0);
	case BY_RESET:
		return ioctl(self->v.device, VFIO_DEVICE_RESET);
	case BY_LOW_POWER:
		return ioctl(self->v.device, VFIO_DEVICE_FEATURE, &feat);
	case BY_HOT_RESET:
		hr = calloc(1, size);
		if (!hr)
			return -1;
		hr->argsz = size;
		hr->count = 1;
		hr->group_fds[0] = self->v.group;
		ret = ioctl(self->v.device, VFIO_DEVICE_PCI_HOT_RESET, hr);
		free(hr);
		return ret;
	}
	return -1;
}

/*
 * An importer that does not give its mapping back: the call @by waits for
 * it (still after @wait_s seconds), a fatal signal ends the wait and fails
 * the call within a second, with decode still on, and the dma-buf stays
 * revoked (a failed hot reset gives access back, as it always has); it
 * is given back once the importer lets go and decode is written again.
 */
static void killed_while_revoking(struct __test_metadata *_metadata,
				  FIXTURE_DATA(p2p) *self, enum user_revoke by,
				  unsigned int wait_s)
{
	uint16_t cmd = 0;
	double t0, ms;
	uint32_t nr = 0;
	char val[16];
	pid_t pid;
	int status;

	ATTACH_AND_MAP(IMP_API_RANGES);
	ASSERT_EQ(0, imp_slow(self->imp, IMP_SLOW_UNMAP, 0));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid)
		_exit(user_revoke(self, by) ? 1 : 0);
	sleep(wait_s);
	EXPECT_EQ(0, waitpid(pid, &status, WNOHANG))
		TH_LOG("the call gave up on the importer");
	t0 = now_ms();
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ms = now_ms() - t0;
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	EXPECT_LT(ms, 1000) TH_LOG("%.0f ms to kill the waiting call", ms);

	ASSERT_EQ(2, pread(self->v.device, &cmd, 2, self->v.cfg_off + PCI_COMMAND));
	EXPECT_TRUE(cmd & PCI_COMMAND_MEMORY) TH_LOG("the killed call turned decode off");
	ASSERT_EQ(0, fdinfo(self->dmabuf, "vfio-pci-revoked:\t", val, sizeof(val)));
	EXPECT_STREQ(by == BY_HOT_RESET ? "0" : "1", val);
	EXPECT_EQ(1, imp_status(self->imp).mapped);

	ASSERT_EQ(0, ioctl(self->imp, IMP_UNMAP));
	if (by != BY_HOT_RESET)
		EXPECT_EQ(-ENODEV, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));
	ASSERT_EQ(0, set_memory_decode(&self->v, 1));
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));
	dma_round_trip(_metadata, self, 70);
}

/* Past the 5 s bound the old code gave up at. */
TEST_F(p2p, revoke_waits_for_stuck_importer_until_killed)
{
	killed_while_revoking(_metadata, self, BY_DECODE_OFF, 6);
}

TEST_F(p2p, reset_ioctl_waits_for_stuck_importer_until_killed)
{
	if (!(self->v.flags & VFIO_DEVICE_FLAGS_RESET))
		SKIP(return, "the device has no reset method in this topology");
	killed_while_revoking(_metadata, self, BY_RESET, 2);
}

TEST_F(p2p, low_power_entry_waits_for_stuck_importer_until_killed)
{
	killed_while_revoking(_metadata, self, BY_LOW_POWER, 2);
}

TEST_F(p2p, hot_reset_waits_for_stuck_importer_until_killed)
{
	killed_while_revoking(_metadata, self, BY_HOT_RESET, 2);
}

/* PCI_COMMAND of @bdf as the PCI core has it, not through vfio. */
static int pci_command(const char *bdf, uint16_t *cmd)
{
	char path[128];
	int fd, n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = pread(fd, cmd, 2, PCI_COMMAND);
	close(fd);
	return n == 2 ? 0 : -1;
}

/*
 * Close returns at once while an importer still holds a mapping; until
 * the importer lets go, the device keeps its BAR claimed and decoding with
 * bus mastering off, and cannot be opened again (EBUSY).  A reset from the
 * host meanwhile waits for the importer too.
 */
TEST_F(p2p, close_leaves_device_busy_until_slow_importer_lets_go)
{
	char bdf[32], reset[80];
	uint64_t start, size;
	double t0, ms;
	uint16_t cmd;
	int ret;

	ATTACH_AND_MAP(IMP_API_RANGES);
	ASSERT_EQ(0, imp_slow(self->imp, IMP_SLOW_UNMAP, SLOW_MS));
	ASSERT_EQ(0, bar_resource(self->v.bdf, BAR, &start, &size));
	snprintf(bdf, sizeof(bdf), "%s", self->v.bdf);
	munmap(self->region, 2 * SZ_1M);
	self->region = NULL;
	t0 = now_ms();
	vfio_close(&self->v);
	ms = now_ms() - t0;
	EXPECT_LT(ms, SLOW_MS / 2) TH_LOG("%.0f ms: close waited for the importer", ms);
	EXPECT_EQ(1, imp_status(self->imp).mapped);
	ASSERT_EQ(0, pci_command(bdf, &cmd));
	EXPECT_TRUE(cmd & PCI_COMMAND_MEMORY) TH_LOG("decode off under a peer's mapping");
	EXPECT_FALSE(cmd & PCI_COMMAND_MASTER) TH_LOG("a closed device may DMA");
	EXPECT_EQ(1, iomem_claimed(start, size, "vfio"))
		TH_LOG("the BAR was released under a peer's mapping");
	ret = vfio_open_when_idle(&self->v, bdf, BAR, 0);
	EXPECT_EQ(EBUSY, ret) TH_LOG("reopen under a peer's mapping: %s", strerror(ret));

	snprintf(reset, sizeof(reset), "/sys/bus/pci/devices/%s/reset", bdf);
	ASSERT_EQ(0, write_file(reset, "1"));
	ms = now_ms() - t0;
	EXPECT_GE(ms, 0.9 * SLOW_MS) TH_LOG("%.0f ms: the host's reset did not wait for the importer", ms);
	EXPECT_EQ(0, imp_status(self->imp).mapped);

	ret = vfio_open_when_idle(&self->v, bdf, BAR, 5 * SLOW_MS - (now_ms() - t0));
	ms = now_ms() - t0;
	ASSERT_EQ(0, ret) TH_LOG("reopen after the importer let go: %s", strerror(ret));
	EXPECT_GE(ms, 0.9 * SLOW_MS) TH_LOG("reopened at %.0f ms, before the importer let go", ms);
	EXPECT_EQ(0, imp_status(self->imp).mapped);
	expect_revoked(_metadata, self, NULL);
}

struct unbind {
	const char *bdf;
	double done_ms;
	int done, ret;
};

static void *unbind_thread(void *arg)
{
	struct unbind *u = arg;
	char path[128];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", u->bdf);
	u->ret = write_file(path, u->bdf);
	u->done_ms = now_ms();
	__atomic_store_n(&u->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Unbinding an open device waits for its user to close it, and for the
 * importer the close left it draining for: the device is never handed on
 * while an importer can reach its BAR.
 */
TEST_F(p2p, revoke_by_unbind_while_open)
{
	struct unbind u = { .bdf = self->v.bdf };
	uint32_t moves;
	double closed;
	pthread_t t;

	ATTACH_AND_MAP(IMP_API_RANGES);
	ASSERT_EQ(0, imp_slow(self->imp, IMP_SLOW_UNMAP, SLOW_MS));
	moves = imp_status(self->imp).moves;
	ASSERT_EQ(0, pthread_create(&t, NULL, unbind_thread, &u));
	usleep(300000);
	EXPECT_EQ(0, __atomic_load_n(&u.done, __ATOMIC_ACQUIRE))
		TH_LOG("unbind finished while the device was open");
	EXPECT_EQ(moves, imp_status(self->imp).moves);

	munmap(self->region, 2 * SZ_1M);
	self->region = NULL;
	closed = now_ms();
	vfio_close(&self->v);
	pthread_join(t, NULL);
	EXPECT_EQ(0, u.ret);
	EXPECT_GE(u.done_ms - closed, 0.9 * SLOW_MS)
		TH_LOG("unbind finished before the importer let go");
	EXPECT_EQ(moves + 1, imp_status(self->imp).moves);
	expect_revoked(_metadata, self, NULL);
	ASSERT_EQ(0, ioctl(self->imp, IMP_DETACH));
	ASSERT_EQ(0, write_file("/sys/bus/pci/drivers_probe", self->v.bdf));
}

/* VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY revokes, _EXIT restores. */
TEST_F(p2p, revoke_by_low_power)
{
	struct vfio_device_feature feat = { .argsz = sizeof(feat) };
	uint32_t moves, nr = 0;

	ATTACH_AND_MAP(IMP_API_RANGES);
	moves = imp_status(self->imp).moves;
	feat.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY;
	ASSERT_EQ(0, ioctl(self->v.device, VFIO_DEVICE_FEATURE, &feat));
	EXPECT_EQ(moves + 1, imp_status(self->imp).moves);
	expect_revoked(_metadata, self, NULL);

	feat.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT;
	ASSERT_EQ(0, ioctl(self->v.device, VFIO_DEVICE_FEATURE, &feat));
	EXPECT_EQ(moves + 1, imp_status(self->imp).moves);
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));
	dma_round_trip(_metadata, self, 60);
}

/*
 * D3hot through the PM capability revokes, D0 restores: QEMU's nvme has
 * a PM capability (ivshmem has none), so its register BAR is the export.
 */
#define NVME_ID		"0x1b36 0x0010"

/* nvme's BAR 0 exported and mapped for edu, a revocable importer. */
FIXTURE(nvme) {
	struct vdev v;
	int dmabuf, imp;
	uint32_t moves;
};

FIXTURE_SETUP(nvme)
{
	struct vfio_region_dma_range r = { 0, SZ_4K };
	uint32_t nr = 0;

	self->dmabuf = self->imp = -1;
	self->v.container = self->v.group = self->v.device = -1;
	if (!reachable())
		SKIP(return, "no P2P path in this topology");
	ASSERT_EQ(0, vfio_open_dev(&self->v, NVME_ID, VFIO_PCI_BAR0_REGION_INDEX));
	self->dmabuf = export_ranges(self->v.device, VFIO_PCI_BAR0_REGION_INDEX,
				     O_RDWR, 0, 1, &r, 1);
	ASSERT_GE(self->dmabuf, 0);
	self->imp = open_importer();
	ASSERT_GE(self->imp, 0);
	ASSERT_EQ(0, imp_attach(self->imp, self->dmabuf, FULL));
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));
	self->moves = imp_status(self->imp).moves;
}

FIXTURE_TEARDOWN(nvme)
{
	if (self->imp >= 0)
		close(self->imp);
	if (self->dmabuf >= 0)
		close(self->dmabuf);
	vfio_close(&self->v);
}

/* The importer may map again, once. */
static void expect_restored(struct __test_metadata *_metadata,
			    FIXTURE_DATA(nvme) *self)
{
	uint32_t nr = 0;

	EXPECT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));
	EXPECT_EQ(1, nr);
}

TEST_F(nvme, revoke_by_d3hot)
{
	int pm = find_cap(&self->v, PCI_CAP_ID_PM);
	uint32_t nr = 0;
	uint16_t pmcsr;

	ASSERT_NE(0, pm) TH_LOG("nvme has no PM capability");
	ASSERT_EQ(2, pread(self->v.device, &pmcsr, 2, self->v.cfg_off + pm + PCI_PM_CTRL));
	pmcsr = (pmcsr & ~PCI_PM_CTRL_STATE_MASK) | 3;
	ASSERT_EQ(2, pwrite(self->v.device, &pmcsr, 2, self->v.cfg_off + pm + PCI_PM_CTRL));
	EXPECT_EQ(self->moves + 1, imp_status(self->imp).moves);
	EXPECT_EQ(0, imp_status(self->imp).mapped);
	EXPECT_EQ(-ENODEV, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));

	pmcsr &= ~PCI_PM_CTRL_STATE_MASK;
	ASSERT_EQ(2, pwrite(self->v.device, &pmcsr, 2, self->v.cfg_off + pm + PCI_PM_CTRL));
	EXPECT_EQ(self->moves + 1, imp_status(self->imp).moves);
	expect_restored(_metadata, self);
}

/*
 * A function level reset through the PCIe capability revokes and
 * restores; QEMU's nvme has FLR (ivshmem has no PCIe capability).
 */
TEST_F(nvme, revoke_by_flr)
{
	int exp = find_cap(&self->v, PCI_CAP_ID_EXP);
	uint32_t devcap;
	uint16_t devctl;

	ASSERT_NE(0, exp) TH_LOG("nvme has no PCIe capability");
	ASSERT_EQ(4, pread(self->v.device, &devcap, 4, self->v.cfg_off + exp + PCI_EXP_DEVCAP));
	ASSERT_NE(0, devcap & PCI_EXP_DEVCAP_FLR) TH_LOG("nvme has no FLR");
	ASSERT_EQ(2, pread(self->v.device, &devctl, 2, self->v.cfg_off + exp + PCI_EXP_DEVCTL));
	devctl |= PCI_EXP_DEVCTL_BCR_FLR;
	ASSERT_EQ(2, pwrite(self->v.device, &devctl, 2, self->v.cfg_off + exp + PCI_EXP_DEVCTL));
	/* Revoked for the reset, given back after it, silently. */
	EXPECT_EQ(self->moves + 1, imp_status(self->imp).moves);
	EXPECT_EQ(0, imp_status(self->imp).mapped);
	expect_restored(_metadata, self);
}

/*
 * Two importers, each on its own attachment, map, DMA and unmap while
 * decode toggles and resets revoke and restore, then while the device is
 * closed.  Each writes a fresh pattern to its own page of the BAR and
 * reads it back within one mapping: a revoke drops the mapping, so when
 * both DMAs succeed none came between them and the bytes must match,
 * whereas a DMA let through while decode is off loses them.
 */
#define RACE_MIN_PAIRS		4
#define RACE_MAX_SECONDS	20

struct race {
	FIXTURE_DATA(p2p) *self;
	int stop, stop_revoker, closed;
	int errors, mismatches, pairs, after_close;
};

struct racer {
	struct race *race;
	int imp, id, dmas, maps, iters;
};

#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define INC(x)		__atomic_fetch_add(&(x), 1, __ATOMIC_RELAXED)

static void *race_importer(void *arg)
{
	struct racer *r = arg;
	struct race *race = r->race;
	uint64_t at = SLICE0_LEN + r->id * SZ_4K;
	uint8_t want[256], got[256];
	unsigned int n = 0;
	uint32_t nr;
	int ret;

	while (!LOAD(race->stop)) {
		int closed = LOAD(race->closed);

		nr = 0;
		r->iters++;
		ret = imp_map(r->imp, IMP_API_RANGES, 0, NULL, &nr);
		if (!ret)
			r->maps++;
		if (ret && ret != -ENODEV)
			INC(race->errors);
		fill(want, sizeof(want), r->id * 1000000 + n++);
		ret = imp_dma(r->imp, at, want, sizeof(want), 1);
		if (!ret) {
			r->dmas++;
			memset(got, 0, sizeof(got));
			ret = imp_dma(r->imp, at, got, sizeof(got), 0);
			if (!ret) {
				r->dmas++;
				INC(race->pairs);
				if (memcmp(got, want, sizeof(want)))
					INC(race->mismatches);
			}
		}
		if (ret && ret != -ENODEV)
			INC(race->errors);
		if (!ret && closed)
			INC(race->after_close);
		ioctl(r->imp, IMP_UNMAP);
	}
	return NULL;
}

static void *race_revoker(void *arg)
{
	struct race *race = arg;
	unsigned int i = 0, seed = 1;

	while (!LOAD(race->stop_revoker)) {
		set_memory_decode(&race->self->v, i & 1);
		if (race->self->v.flags & VFIO_DEVICE_FLAGS_RESET && i % 5 == 0)
			ioctl(race->self->v.device, VFIO_DEVICE_RESET);
		/* Windows of every length, for importers to get a DMA in. */
		usleep(rand_r(&seed) % 4000);
		i++;
	}
	set_memory_decode(&race->self->v, 1);
	return NULL;
}

TEST_F(p2p, races_stay_consistent)
{
	struct race race = { .self = self };
	struct racer r[2];
	pthread_t t[3];
	int i;

	if (!reachable())
		SKIP(return, "no P2P path in this topology");
	for (i = 0; i < 2; i++) {
		r[i] = (struct racer){ .race = &race, .id = i };
		r[i].imp = i ? open_importer() : self->imp;
		ASSERT_GE(r[i].imp, 0);
		ASSERT_EQ(0, imp_attach(r[i].imp, self->dmabuf, FULL));
		ASSERT_EQ(0, pthread_create(&t[i], NULL, race_importer, &r[i]));
	}
	ASSERT_EQ(0, pthread_create(&t[2], NULL, race_revoker, &race));
	/*
	 * edu takes 100 ms of QEMU's clock per transfer, four per pair, and
	 * TCG's clock runs slow on a busy host: race for at least 3 s and
	 * until there are enough pairs, within the harness's 30 s.
	 */
	for (i = 0; i < RACE_MAX_SECONDS; i++) {
		sleep(1);
		if (i >= 2 && LOAD(race.pairs) >= RACE_MIN_PAIRS)
			break;
	}
	STORE(race.stop_revoker, 1);
	pthread_join(t[2], NULL);
	sleep(1);
	/* Then close the device under the importers' feet. */
	munmap(self->region, 2 * SZ_1M);
	self->region = NULL;
	vfio_close(&self->v);
	STORE(race.closed, 1);
	usleep(500000);
	STORE(race.stop, 1);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);

	EXPECT_EQ(0, race.errors);
	EXPECT_EQ(0, race.mismatches) TH_LOG("a DMA reached the BAR while it was revoked");
	EXPECT_EQ(0, race.after_close) TH_LOG("a DMA succeeded after close");
	EXPECT_LE(RACE_MIN_PAIRS, race.pairs)
		TH_LOG("too few DMAs to prove anything");
	for (i = 0; i < 2; i++) {
		struct imp_status st = imp_status(r[i].imp);

		EXPECT_EQ(0, st.mapped);
		EXPECT_EQ(r[i].dmas, st.dma_count)
			TH_LOG("importer %d: %d DMAs succeeded, %u issued",
			       i, r[i].dmas, st.dma_count);
	}
	TH_LOG("%d write-read pairs checked; importers: %d/%d and %d/%d maps",
	       race.pairs, r[0].maps, r[0].iters, r[1].maps, r[1].iters);
	close(r[1].imp);
}

TEST_HARNESS_MAIN
