// SPDX-License-Identifier: GPL-2.0
/*
 * VFIO_DEVICE_FEATURE_DMA_BUF and vfio-pci-core variant drivers.
 *
 * The feature is implemented in the shared core, but a variant driver may
 * show the user less of a BAR than the device has (hisi_acc hides the
 * upper half of BAR 2), so a driver must opt in by describing its regions.
 * modules/vfio_pci_variant_test.c is such a variant for QEMU's ivshmem: it
 * reports the first half of BAR 2 only, and with dmabuf=1 opts in with a
 * description that refuses slices past that half.
 *
 * Each test rebinds ivshmem; the teardown, run in the parent so that it
 * also runs when a test fails or crashes, binds it back to vfio-pci and
 * unloads the variant module.  Runs on every topology ($TOPO).
 */
#include <dirent.h>
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

#define VARIANT		"vfio_pci_variant_test"
#define VARIANT_SYSFS	"/sys/module/" VARIANT




/* The physical size of BAR @bar of @bdf, from sysfs; 0 when absent. */
static uint64_t bar_len(const char *bdf, int bar)
{
	uint64_t start, size;

	return bar_resource(bdf, bar, &start, &size) ? 0 : size;
}

/* Bind @bdf to @driver through driver_override; 0 once it is bound. */
static int bind_driver(const char *bdf, const char *driver)
{
	char path[256], cur[64];

	driver_of(bdf, cur, sizeof(cur));
	if (!strcmp(cur, driver))
		return 0;
	if (cur[0]) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", bdf);
		if (write_file(path, bdf))
			return -1;
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
	if (write_file(path, driver))
		return -1;
	write_file("/sys/bus/pci/drivers_probe", bdf);
	driver_of(bdf, cur, sizeof(cur));
	return strcmp(cur, driver) ? -1 : 0;
}

/* Unload the variant module if it is loaded; 0 once it is gone. */
static int unload_variant(void)
{
	if (access(VARIANT_SYSFS, F_OK))
		return 0;
	if (system("rmmod " VARIANT))
		return -1;
	return access(VARIANT_SYSFS, F_OK) ? 0 : -1;
}


/* VFIO_DEVICE_FEATURE_PROBE | GET of @feature: 0 or an errno. */
static int probe_feature(int device, uint32_t feature, uint32_t op)
{
	struct vfio_device_feature feat = {
		.argsz = sizeof(feat),
		.flags = VFIO_DEVICE_FEATURE_PROBE | op | feature,
	};

	return ioctl(device, VFIO_DEVICE_FEATURE, &feat) ? errno : 0;
}

/* Export one slice of BAR 2: the dma-buf fd, or -errno. */
static int export1(int device, uint64_t offset, uint64_t length)
{
	struct vfio_region_dma_range r = { offset, length };
	int fd = export_ranges(device, BAR, O_RDWR | O_CLOEXEC, 0, 1, &r, 1);

	return fd < 0 ? -errno : fd;
}

FIXTURE(rebind) {
	struct vdev v;
	char bdf[32];
	uint64_t phys_len;	/* of BAR 2 */
};

FIXTURE_SETUP(rebind)
{
	self->v.container = self->v.group = self->v.device = -1;
	ASSERT_EQ(0, find_pci(IVSHMEM_ID, self->bdf)) TH_LOG("no ivshmem");
	self->phys_len = bar_len(self->bdf, BAR);
	ASSERT_GE(self->phys_len, 4 * SZ_1M);
}

/*
 * In the parent, after the test's process has exited and so closed the
 * device and every dma-buf: its file descriptors are not ours to close.
 */
FIXTURE_TEARDOWN_PARENT(rebind)
{
	char drv[64], override[64] = "";
	char path[256];

	EXPECT_EQ(0, bind_vfio(self->bdf));
	EXPECT_EQ(0, unload_variant()) TH_LOG("cannot unload " VARIANT);
	driver_of(self->bdf, drv, sizeof(drv));
	EXPECT_STREQ("vfio-pci", drv);
	/* bind_vfio() leaves the override alone when vfio-pci had the device. */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", self->bdf);
	EXPECT_EQ(0, write_file(path, "vfio-pci"));
	read_file(path, override, sizeof(override));
	override[strcspn(override, "\n")] = 0;
	EXPECT_STREQ("vfio-pci", override);
}

/* Past the region's reported end nothing is read or mapped; before it is. */
static void expect_hidden(struct __test_metadata *_metadata, struct vdev *v)
{
	uint32_t word;
	void *p;

	EXPECT_EQ(-1, pread(v->device, &word, sizeof(word), v->bar_off + v->bar_size));
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, SZ_4K, PROT_READ, MAP_SHARED, v->device, v->bar_off + v->bar_size);
	EXPECT_EQ(MAP_FAILED, p);
	if (p != MAP_FAILED)
		munmap(p, SZ_4K);
	p = mmap(NULL, SZ_4K, PROT_READ, MAP_SHARED, v->device,
		 v->bar_off + v->bar_size - SZ_4K);
	EXPECT_NE(MAP_FAILED, p);
	if (p != MAP_FAILED)
		munmap(p, SZ_4K);
}

/*
 * Load the variant module with dmabuf=@dmabuf, bind ivshmem to it and open
 * it; checks each step, so that no later assertion can pass on vfio-pci.
 */
static void use_variant(struct __test_metadata *_metadata,
			FIXTURE_DATA(rebind) *self, int dmabuf)
{
	char cmd[128], val[8] = "", drv[64];

	/* A module left loaded would keep its parameter: start afresh. */
	ASSERT_EQ(0, bind_vfio(self->bdf));
	ASSERT_EQ(0, unload_variant());
	snprintf(cmd, sizeof(cmd), "modprobe " VARIANT " dmabuf=%d", dmabuf);
	ASSERT_EQ(0, system(cmd)) TH_LOG("%s failed", cmd);
	ASSERT_EQ(0, read_file(VARIANT_SYSFS "/parameters/dmabuf", val, sizeof(val)));
	ASSERT_EQ(dmabuf ? 'Y' : 'N', val[0]);

	ASSERT_EQ(0, bind_driver(self->bdf, VARIANT));
	driver_of(self->bdf, drv, sizeof(drv));
	ASSERT_STREQ(VARIANT, drv);
	ASSERT_EQ(0, vfio_open_group(&self->v, self->bdf, BAR, 1))
		TH_LOG("cannot open ivshmem through " VARIANT);

	/* The variant's own restriction holds: half of BAR 2 is reported... */
	ASSERT_EQ(self->phys_len / 2, self->v.bar_size);
	/* ...and what lies past it cannot be read or mapped. */
	expect_hidden(_metadata, &self->v);

	/* The fd answers the core's other features. */
	ASSERT_EQ(0, probe_feature(self->v.device, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
				   VFIO_DEVICE_FEATURE_SET));
}

TEST_F(rebind, variant_without_opt_in_refuses_dma_buf)
{
	int before, fd;

	use_variant(_metadata, self, 0);

	EXPECT_EQ(EOPNOTSUPP, probe_feature(self->v.device, VFIO_DEVICE_FEATURE_DMA_BUF,
					VFIO_DEVICE_FEATURE_GET));

	before = count_fds();
	fd = export1(self->v.device, 0, SZ_4K);
	EXPECT_EQ(-EOPNOTSUPP, fd);
	if (fd >= 0)
		close(fd);
	/* Nor past the half, where the BAR still is. */
	fd = export1(self->v.device, self->v.bar_size, SZ_4K);
	EXPECT_EQ(-EOPNOTSUPP, fd);
	if (fd >= 0)
		close(fd);
	EXPECT_EQ(before, count_fds()) TH_LOG("a file descriptor was created");
	vfio_close(&self->v);
}

TEST_F(rebind, variant_opt_in_checks_its_region)
{
	uint64_t half = self->phys_len / 2;
	struct vfio_region_dma_range two[2] = { { 0, SZ_4K }, { half, SZ_4K } };
	char val[128], want[128];
	int before, fd;

	use_variant(_metadata, self, 1);

	EXPECT_EQ(0, probe_feature(self->v.device, VFIO_DEVICE_FEATURE_DMA_BUF,
				   VFIO_DEVICE_FEATURE_GET));

	fd = export1(self->v.device, 0, SZ_4K);
	ASSERT_GE(fd, 0) TH_LOG("export of [0, 4K) failed: %s", strerror(-fd));
	ASSERT_EQ(0, fdinfo(fd, "vfio-pci-dev:\t", val, sizeof(val)));
	EXPECT_STREQ(self->bdf, val);
	close(fd);

	/* Past the half, all of it inside the physical BAR: refused. */
	before = count_fds();
	EXPECT_EQ(-EINVAL, export1(self->v.device, half, SZ_4K));
	EXPECT_EQ(-EINVAL, export1(self->v.device, half - SZ_4K, 2 * SZ_4K));
	EXPECT_EQ(-EINVAL, export1(self->v.device, self->phys_len - SZ_4K, SZ_4K));
	EXPECT_EQ(-1, export_ranges(self->v.device, BAR, O_RDWR, 0, 2, two, 2));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(before, count_fds()) TH_LOG("a file descriptor leaked");

	/* Up to the half exactly: exported, at the offset asked for. */
	fd = export1(self->v.device, half - SZ_4K, SZ_4K);
	ASSERT_GE(fd, 0) TH_LOG("export of the last page of the half failed: %s",
				strerror(-fd));
	ASSERT_EQ(0, fdinfo(fd, "vfio-pci-range:\t", val, sizeof(val)));
	snprintf(want, sizeof(want), "%#llx+%#llx",
		 (unsigned long long)(half - SZ_4K), (unsigned long long)SZ_4K);
	EXPECT_STREQ(want, val);
	close(fd);

	fd = export1(self->v.device, 0, half);
	EXPECT_GE(fd, 0) TH_LOG("export of the whole half failed: %s", strerror(-fd));
	if (fd >= 0)
		close(fd);
	vfio_close(&self->v);
}

TEST_F(rebind, vfio_pci_offers_dma_buf)
{
	char drv[64];
	int fd;

	ASSERT_EQ(0, unload_variant());
	ASSERT_EQ(0, vfio_open(&self->v)) TH_LOG("cannot open ivshmem through vfio-pci");
	driver_of(self->bdf, drv, sizeof(drv));
	ASSERT_STREQ("vfio-pci", drv);
	ASSERT_EQ(self->phys_len, self->v.bar_size);

	EXPECT_EQ(0, probe_feature(self->v.device, VFIO_DEVICE_FEATURE_DMA_BUF,
				   VFIO_DEVICE_FEATURE_GET));
	/* The slices the variant refuses, vfio-pci exports. */
	fd = export1(self->v.device, self->phys_len / 2, SZ_4K);
	EXPECT_GE(fd, 0) TH_LOG("export past the half failed: %s", strerror(-fd));
	if (fd >= 0)
		close(fd);
	fd = export1(self->v.device, self->phys_len - SZ_4K, SZ_4K);
	EXPECT_GE(fd, 0) TH_LOG("export of the BAR's last page failed: %s", strerror(-fd));
	if (fd >= 0)
		close(fd);
	vfio_close(&self->v);
}

TEST_HARNESS_MAIN
