// SPDX-License-Identifier: GPL-2.0
/*
 * VFIO_DEVICE_PCI_HOT_RESET and the dma-bufs of VFIO_DEVICE_FEATURE_DMA_BUF:
 * the reset revokes ivshmem's dma-buf (the importer gets move_notify and
 * drops its mapping) and restores it after, so that mapping again and edu's
 * peer-to-peer DMA work.
 *
 * On $TOPO "multifn" ivshmem is function 0 of a multi-function slot whose
 * function 1 is a second edu: the reset set holds two devices, and the
 * reset has to restore the set's devices that are bound to vfio-pci but
 * not opened (vconfig NULL) as well as the opened ones.  On "switch" and
 * "iommu" ivshmem is alone below its port: a reset set of one.  "noreach"
 * has no P2P path and no bus reset for devices on the root complex.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vfio_util.h"

#define EDU_ID		"0x1234 0x11e8"
#define SLICE_LEN	(2 * SZ_1M)	/* the dma-buf: BAR 2 [0, 2 MiB) */
#define MAX_DEVS	8

static int is_topo(const char *t)
{
	return !strcmp(topo(), t);
}

/* "vendor device" of PCI device @bdf, as IVSHMEM_ID and EDU_ID spell it. */
static int pci_id(const char *bdf, char *id, size_t size)
{
	char path[256], v[16], d[16];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", bdf);
	if (read_file(path, v, sizeof(v)))
		return -1;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", bdf);
	if (read_file(path, d, sizeof(d)))
		return -1;
	v[strcspn(v, "\n")] = 0;
	d[strcspn(d, "\n")] = 0;
	snprintf(id, size, "%s %s", v, d);
	return 0;
}




/* VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: the number of devices, or -errno. */
static int hot_reset_info(int device, struct vfio_pci_dependent_device *devs,
			  uint32_t *flags)
{
	size_t size = sizeof(struct vfio_pci_hot_reset_info) +
		      MAX_DEVS * sizeof(*devs);
	struct vfio_pci_hot_reset_info *info = calloc(1, size);
	int ret;

	if (!info)
		return -ENOMEM;
	info->argsz = size;
	if (ioctl(device, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info)) {
		ret = -errno;
	} else {
		ret = info->count;
		*flags = info->flags;
		memcpy(devs, info->devices, info->count * sizeof(*devs));
	}
	free(info);
	return ret;
}

/* VFIO_DEVICE_PCI_HOT_RESET with @n group fds: 0 or -errno. */
static int hot_reset(int device, const int *group_fds, int n)
{
	size_t size = sizeof(struct vfio_pci_hot_reset) + n * sizeof(__s32);
	struct vfio_pci_hot_reset *reset = calloc(1, size);
	int ret;

	if (!reset)
		return -ENOMEM;
	reset->argsz = size;
	reset->count = n;
	memcpy(reset->group_fds, group_fds, n * sizeof(__s32));
	ret = ioctl(device, VFIO_DEVICE_PCI_HOT_RESET, reset) ? -errno : 0;
	free(reset);
	return ret;
}

/* Is @bdf in the hot reset list, with the group of @bdf? */
static int listed(const struct vfio_pci_dependent_device *devs, int n,
		  const char *bdf)
{
	unsigned int seg, bus, dev, fn;
	int i;

	if (sscanf(bdf, "%x:%x:%x.%x", &seg, &bus, &dev, &fn) != 4)
		return 0;
	for (i = 0; i < n; i++)
		if (devs[i].segment == seg && devs[i].bus == bus &&
		    devs[i].devfn == ((dev << 3) | fn))
			return (int)devs[i].group_id == group_of(bdf);
	return 0;
}

static int dmabuf_revoked(int fd)
{
	char path[64], buf[4096], *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (read_file(path, buf, sizeof(buf)))
		return -1;
	p = strstr(buf, "vfio-pci-revoked:\t");
	return p ? atoi(p + strlen("vfio-pci-revoked:\t")) : -1;
}

FIXTURE(hr) {
	struct vdev v;		/* ivshmem, opened: the exporter */
	struct vdev fn1;	/* multifn: the edu of function 1 */
	int imp, dmabuf;
	uint8_t *region;	/* BAR 2 [0, SLICE_LEN) through vfio */
};

FIXTURE_SETUP(hr)
{
	self->v.container = self->v.group = self->v.device = -1;
	self->fn1.container = self->fn1.group = self->fn1.device = -1;
	self->imp = self->dmabuf = -1;
	self->region = MAP_FAILED;
}

FIXTURE_TEARDOWN(hr)
{
	if (self->imp >= 0)
		close(self->imp);
	if (self->region != MAP_FAILED)
		munmap(self->region, SLICE_LEN);
	if (self->dmabuf >= 0)
		close(self->dmabuf);
	vfio_close(&self->v);
	vfio_close(&self->fn1);
}

/*
 * multifn: find function 1 of ivshmem's slot (an edu, not the importer's
 * edu on the other root port), bind it to vfio-pci and open its group,
 * and its device with @with_device; then open ivshmem.
 */
static void open_multifn(struct __test_metadata *_metadata,
			 FIXTURE_DATA(hr) *self, int with_device)
{
	char ivshmem[32], fn1[32], id[40], drv[64];
	size_t len;

	ASSERT_EQ(0, find_pci(IVSHMEM_ID, ivshmem)) TH_LOG("no ivshmem");
	len = strlen(ivshmem);
	ASSERT_EQ(0, strcmp(ivshmem + len - 2, ".0"))
		TH_LOG("ivshmem %s is not function 0", ivshmem);
	strcpy(fn1, ivshmem);
	fn1[len - 1] = '1';
	ASSERT_EQ(0, pci_id(fn1, id, sizeof(id))) TH_LOG("no function 1 at %s", fn1);
	ASSERT_STREQ(EDU_ID, id) TH_LOG("function 1 of ivshmem's slot is not edu");
	driver_of(fn1, drv, sizeof(drv));
	ASSERT_STRNE("dmabuf_importer", drv)
		TH_LOG("the importer took %s: its own edu must come first in PCI order", fn1);
	ASSERT_EQ(0, bind_vfio(fn1)) TH_LOG("cannot bind %s to vfio-pci", fn1);
	driver_of(fn1, drv, sizeof(drv));
	ASSERT_STREQ("vfio-pci", drv);

	ASSERT_EQ(0, vfio_open(&self->v)) TH_LOG("cannot open ivshmem through vfio-pci");
	ASSERT_STREQ(ivshmem, self->v.bdf);
	ASSERT_EQ(0, vfio_open_group(&self->fn1, fn1, BAR, with_device))
		TH_LOG("cannot open %s's vfio group%s", fn1, with_device ? " and device" : "");
	ASSERT_NE(group_of(ivshmem), group_of(fn1));
}

/* edu DMAs a pattern into the dma-buf and back; checked through vfio. */
static void dma_round_trip(struct __test_metadata *_metadata,
			   FIXTURE_DATA(hr) *self, unsigned int seed)
{
	static const uint64_t at[] = { 0, SLICE_LEN - IMP_DMA_MAX };
	uint8_t want[IMP_DMA_MAX], got[IMP_DMA_MAX];
	unsigned int i;

	for (i = 0; i < 2; i++) {
		fill(want, sizeof(want), seed + i);
		ASSERT_EQ(0, imp_dma(self->imp, at[i], want, sizeof(want), 1));
		EXPECT_EQ(0, memcmp(self->region + at[i], want, sizeof(want)))
			TH_LOG("edu -> BAR at offset %#llx", (unsigned long long)at[i]);

		fill(want, sizeof(want), seed + 100 + i);
		memcpy(self->region + at[i], want, sizeof(want));
		memset(got, 0, sizeof(got));
		ASSERT_EQ(0, imp_dma(self->imp, at[i], got, sizeof(got), 0));
		EXPECT_EQ(0, memcmp(got, want, sizeof(want)))
			TH_LOG("BAR -> edu at offset %#llx", (unsigned long long)at[i]);
	}
}

/*
 * The reset set is exactly ivshmem (and fn1 if @nr_funcs is 2); a reset
 * naming only ivshmem's group is refused there; then export, import, hot
 * reset with @group_fds, and check revoke + restore.
 */
static void reset_and_check(struct __test_metadata *_metadata,
			    FIXTURE_DATA(hr) *self, int nr_funcs)
{
	struct vfio_region_dma_range r = { 0, SLICE_LEN };
	struct vfio_pci_dependent_device devs[MAX_DEVS];
	int fds[2] = { self->v.group, self->fn1.group };
	struct imp_status st;
	uint32_t flags = ~0u, nr, moves, dma_count;
	uint8_t buf[64] = {};
	int n;

	/* The set: the devices a bus or slot reset reaches, with their groups. */
	n = hot_reset_info(self->v.device, devs, &flags);
	ASSERT_EQ(nr_funcs, n) TH_LOG("hot reset info: %d (%s)", n, n < 0 ? strerror(-n) : "devices");
	EXPECT_EQ(0, flags) TH_LOG("group-opened devices report group ids");
	EXPECT_TRUE(listed(devs, n, self->v.bdf)) TH_LOG("ivshmem not in its own reset set");
	if (nr_funcs == 2) {
		ASSERT_TRUE(listed(devs, n, self->fn1.bdf))
			TH_LOG("function 1 (%s) not in ivshmem's reset set", self->fn1.bdf);
		/* Both in one set: fn1's group is needed, and nothing was reset. */
		EXPECT_EQ(-EINVAL, hot_reset(self->v.device, fds, 1));
	}

	ASSERT_GE(self->v.bar_size, SLICE_LEN);
	self->dmabuf = export_ranges(self->v.device, BAR, O_RDWR | O_CLOEXEC, 0, 1, &r, 1);
	ASSERT_GE(self->dmabuf, 0) TH_LOG("export: %s", strerror(errno));
	self->region = mmap(NULL, SLICE_LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
			    self->v.device, self->v.bar_off);
	ASSERT_NE(MAP_FAILED, self->region);
	self->imp = open_importer();
	ASSERT_GE(self->imp, 0) TH_LOG("no test importer");
	ASSERT_EQ(0, imp_attach(self->imp, self->dmabuf, IMP_DYNAMIC | IMP_P2P | IMP_REVOCABLE));
	nr = 0;
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));
	ASSERT_EQ(1, nr);
	st = imp_status(self->imp);
	ASSERT_EQ(1, st.mapped) TH_LOG("the importer holds no mapping before the reset");
	ASSERT_EQ(0, dmabuf_revoked(self->dmabuf));
	dma_round_trip(_metadata, self, 1);

	moves = imp_status(self->imp).moves;
	ASSERT_EQ(0, hot_reset(self->v.device, fds, nr_funcs));

	/* Revoked for the reset, given back after it, silently. */
	st = imp_status(self->imp);
	EXPECT_EQ(moves + 1, st.moves);
	EXPECT_EQ(0, st.mapped) TH_LOG("the importer kept its mapping across the reset");
	EXPECT_EQ(0, dmabuf_revoked(self->dmabuf)) TH_LOG("still revoked after the reset");
	dma_count = st.dma_count;
	EXPECT_EQ(-ENODEV, imp_dma(self->imp, 0, buf, sizeof(buf), 1));
	EXPECT_EQ(dma_count, imp_status(self->imp).dma_count) TH_LOG("DMA without a mapping");

	nr = 0;
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));
	EXPECT_EQ(1, nr);
	EXPECT_EQ(1, imp_status(self->imp).mapped);
	dma_round_trip(_metadata, self, 10);
}

/* The fix's case: function 1 is bound to vfio-pci but never opened. */
TEST_F(hr, hot_reset_with_unopened_function)
{
	if (!is_topo("multifn"))
		SKIP(return, "needs the multifn topology (a multi-function slot)");
	open_multifn(_metadata, self, 0);
	ASSERT_EQ(-1, self->fn1.device);
	reset_and_check(_metadata, self, 2);
}

TEST_F(hr, hot_reset_with_both_functions_open)
{
	if (!is_topo("multifn"))
		SKIP(return, "needs the multifn topology (a multi-function slot)");
	open_multifn(_metadata, self, 1);
	ASSERT_GE(self->fn1.device, 0);
	reset_and_check(_metadata, self, 2);
}

/*
 * Closing ivshmem while its importer holds a mapping returns at once and
 * leaves the reset set free: function 1 opens and works meanwhile.  Until
 * the importer lets go, ivshmem cannot be opened again, and a hot reset of
 * the set, which would reset it under the importer, is refused (EBUSY);
 * both work after.  Function 1, open, is not reset when the drain ends: a
 * dma-buf of its BAR 0 sees no revoke until the hot reset.
 */
TEST_F(hr, closed_function_drains_without_holding_its_set)
{
	struct vfio_region_dma_range r = { 0, SLICE_LEN }, r1 = { 0, SZ_4K };
	char ivshmem[32], fn1[32];
	struct vdev again;
	uint16_t vendor = 0;
	uint32_t nr = 0, moves;
	int fds[2], ret, fn1_buf, imp1;
	double t0, ms;

	if (!is_topo("multifn"))
		SKIP(return, "needs the multifn topology (a multi-function slot)");
	open_multifn(_metadata, self, 0);
	snprintf(ivshmem, sizeof(ivshmem), "%s", self->v.bdf);
	snprintf(fn1, sizeof(fn1), "%s", self->fn1.bdf);
	self->dmabuf = export_ranges(self->v.device, BAR, O_RDWR | O_CLOEXEC, 0, 1, &r, 1);
	ASSERT_GE(self->dmabuf, 0) TH_LOG("export: %s", strerror(errno));
	self->imp = open_importer();
	ASSERT_GE(self->imp, 0) TH_LOG("no test importer");
	ASSERT_EQ(0, imp_attach(self->imp, self->dmabuf, IMP_DYNAMIC | IMP_P2P | IMP_REVOCABLE));
	ASSERT_EQ(0, imp_slow(self->imp, IMP_SLOW_UNMAP, 0));
	ASSERT_EQ(0, imp_map(self->imp, IMP_API_RANGES, 0, NULL, &nr));

	t0 = now_ms();
	vfio_close(&self->v);
	ms = now_ms() - t0;
	EXPECT_LT(ms, 500) TH_LOG("%.0f ms: close waited for the importer", ms);
	EXPECT_EQ(1, imp_status(self->imp).mapped);
	EXPECT_EQ(1, dmabuf_revoked(self->dmabuf));

	t0 = now_ms();
	vfio_close(&self->fn1);
	ASSERT_EQ(0, vfio_open_group(&self->fn1, fn1, BAR, 1))
		TH_LOG("cannot open function 1 while function 0 drains: %s", strerror(errno));
	ASSERT_EQ(2, pread(self->fn1.device, &vendor, 2, self->fn1.cfg_off));
	EXPECT_EQ(0x1234, vendor);
	ms = now_ms() - t0;
	EXPECT_LT(ms, 1000) TH_LOG("%.0f ms to open function 1", ms);
	fn1_buf = export_ranges(self->fn1.device, 0, O_RDWR | O_CLOEXEC, 0, 1, &r1, 1);
	ASSERT_GE(fn1_buf, 0) TH_LOG("export of function 1's BAR 0: %s", strerror(errno));
	imp1 = open_importer();
	ASSERT_GE(imp1, 0);
	ASSERT_EQ(0, imp_attach(imp1, fn1_buf, IMP_DYNAMIC | IMP_P2P | IMP_REVOCABLE));
	nr = 0;
	ASSERT_EQ(0, imp_map(imp1, IMP_API_RANGES, 0, NULL, &nr));
	moves = imp_status(imp1).moves;

	EXPECT_EQ(-1, vfio_open_group(&again, ivshmem, BAR, 1));
	EXPECT_EQ(EBUSY, errno) TH_LOG("reopen under a peer's mapping: %s", strerror(errno));
	ASSERT_GE(again.group, 0);
	fds[0] = again.group;
	fds[1] = self->fn1.group;
	EXPECT_EQ(-EBUSY, hot_reset(self->fn1.device, fds, 2))
		TH_LOG("a hot reset of the set under a peer's mapping");
	EXPECT_EQ(1, imp_status(self->imp).mapped);
	vfio_close(&again);

	ASSERT_EQ(0, ioctl(self->imp, IMP_UNMAP));
	ret = vfio_open_when_idle(&self->v, ivshmem, BAR, 3000);
	ASSERT_EQ(0, ret) TH_LOG("reopen after the importer let go: %s", strerror(ret));
	EXPECT_EQ(moves, imp_status(imp1).moves)
		TH_LOG("the end of the drain reset function 1 under its user");
	fds[0] = self->v.group;
	EXPECT_EQ(0, hot_reset(self->fn1.device, fds, 2));
	EXPECT_EQ(moves + 1, imp_status(imp1).moves)
		TH_LOG("the hot reset did not revoke function 1's dma-buf");
	close(imp1);
	close(fn1_buf);
}

TEST_F(hr, hot_reset_single_device_revokes_and_restores)
{
	if (is_topo("noreach"))
		SKIP(return, "no P2P path, and no bus reset on the root complex");
	if (is_topo("multifn"))
		SKIP(return, "ivshmem shares its slot here: see hot_reset_with_*");
	ASSERT_EQ(0, vfio_open(&self->v)) TH_LOG("cannot open ivshmem through vfio-pci");
	reset_and_check(_metadata, self, 1);
}

TEST_HARNESS_MAIN
