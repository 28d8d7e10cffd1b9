/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace helpers shared by the vfio dma-buf kselftests and the demo:
 * open QEMU's ivshmem through vfio-pci, export dma-bufs of its BAR 2, and
 * drive the edu-based test importer (modules/dmabuf_importer.h).
 */
#ifndef VFIO_UTIL_H
#define VFIO_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "dmabuf_importer.h"

#define IVSHMEM_ID	"0x1af4 0x1110"
#define BAR		VFIO_PCI_BAR2_REGION_INDEX
#define SZ_4K		4096ull
#define SZ_64K		65536ull
#define SZ_1M		(1024ull * 1024)

struct vdev {
	char bdf[32];
	int container, group, device;
	uint64_t bar_size, bar_phys;	/* BAR 2 */
	uint64_t bar_off, cfg_off;	/* region offsets in the device fd */
	uint32_t flags;			/* VFIO_DEVICE_FLAGS_* */
};

static inline const char *topo(void)
{
	const char *t = getenv("TOPO");

	return t ? t : "switch";
}

/* 1 if the running kernel has @opt=y (from /proc/config.gz), else 0. */
static inline int kconfig_y(const char *opt)
{
	FILE *f = popen("zcat /proc/config.gz", "r");
	size_t n = strlen(opt);
	char line[256];
	int y = 0;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, opt, n) && !strcmp(line + n, "=y\n"))
			y = 1;
	if (f)
		pclose(f);
	return y;
}

static inline int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

static inline int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

/* Find the first PCI device with "vendor device" @id; fill @bdf. */
static inline int find_pci(const char *id, char *bdf)
{
	struct dirent *de;
	char path[512], v[16], d[16], both[40];
	DIR *dir = opendir("/sys/bus/pci/devices");

	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", de->d_name);
		if (read_file(path, v, sizeof(v)))
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", de->d_name);
		if (read_file(path, d, sizeof(d)))
			continue;
		v[strcspn(v, "\n")] = 0;
		d[strcspn(d, "\n")] = 0;
		snprintf(both, sizeof(both), "%s %s", v, d);
		if (!strcmp(both, id)) {
			strcpy(bdf, de->d_name);
			closedir(dir);
			return 0;
		}
	}
	closedir(dir);
	return -1;
}

static inline int bind_vfio(const char *bdf)
{
	char path[256], link[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = 0;
		if (strstr(link, "/vfio-pci"))
			return 0;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", bdf);
		if (write_file(path, bdf))
			return -1;
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
	if (write_file(path, "vfio-pci"))
		return -1;
	return write_file("/sys/bus/pci/drivers_probe", bdf);
}

/* Start and size of BAR @bar of @bdf, from sysfs; -1 when it is absent. */
static inline int bar_resource(const char *bdf, int bar, uint64_t *start,
			       uint64_t *size)
{
	char path[256], buf[4096], *line = buf;
	unsigned long long s = 0, e = 0;
	int i;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource", bdf);
	if (read_file(path, buf, sizeof(buf)))
		return -1;
	for (i = 0; i < bar && line; i++) {
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!line || sscanf(line, "%llx %llx", &s, &e) != 2 || e <= s)
		return -1;
	*start = s;
	*size = e - s + 1;
	return 0;
}

static inline uint64_t bar_phys(const char *bdf, int bar)
{
	uint64_t start, size;

	return bar_resource(bdf, bar, &start, &size) ? 0 : start;
}

/* The IOMMU group of @bdf (a no-IOMMU group too), or -1. */
static inline int group_of(const char *bdf)
{
	char path[256], link[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return -1;
	link[n] = 0;
	return atoi(strrchr(link, '/') + 1);
}

/* The name of the driver bound to @bdf, "" if none. */
static inline void driver_of(const char *bdf, char *name, size_t size)
{
	char path[256], link[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0) {
		name[0] = 0;
		return;
	}
	link[n] = 0;
	snprintf(name, size, "%s", strrchr(link, '/') + 1);
}

/*
 * Open @bdf's vfio group into @v (a no-IOMMU group, or an IOMMU group);
 * with @with_device also a container of its own and the device fd, whose
 * BAR @bar is described in @v.  The device stays with its driver.
 */
static inline int vfio_open_group(struct vdev *v, const char *bdf, int bar,
				  int with_device)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_region_info reg = { .argsz = sizeof(reg) };
	struct vfio_device_info info = { .argsz = sizeof(info) };
	int id = group_of(bdf), type = VFIO_NOIOMMU_IOMMU;
	char path[64];

	memset(v, 0, sizeof(*v));
	v->container = v->group = v->device = -1;
	snprintf(v->bdf, sizeof(v->bdf), "%s", bdf);
	if (id < 0)
		return -1;
	snprintf(path, sizeof(path), "/dev/vfio/noiommu-%d", id);
	if (access(path, F_OK)) {
		snprintf(path, sizeof(path), "/dev/vfio/%d", id);
		type = VFIO_TYPE1v2_IOMMU;
	}
	v->group = open(path, O_RDWR);
	if (v->group < 0 || ioctl(v->group, VFIO_GROUP_GET_STATUS, &status) ||
	    !(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		return -1;
	if (!with_device)
		return 0;
	v->container = open("/dev/vfio/vfio", O_RDWR);
	if (v->container < 0 ||
	    ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container) ||
	    ioctl(v->container, VFIO_SET_IOMMU, type))
		return -1;
	v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, v->bdf);
	if (v->device < 0 || ioctl(v->device, VFIO_DEVICE_GET_INFO, &info))
		return -1;
	v->flags = info.flags;

	reg.index = bar;
	if (ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &reg))
		return -1;
	v->bar_size = reg.size;
	v->bar_off = reg.offset;
	reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &reg))
		return -1;
	v->cfg_off = reg.offset;
	v->bar_phys = bar_phys(v->bdf, bar);
	return 0;
}

/* Open the PCI device with "vendor device" @id through vfio-pci; @bar is
 * the BAR described in @v.
 */
static inline int vfio_open_dev(struct vdev *v, const char *id, int bar)
{
	char bdf[32];

	memset(v, 0, sizeof(*v));
	v->container = v->group = v->device = -1;
	if (find_pci(id, bdf) || bind_vfio(bdf))
		return -1;
	return vfio_open_group(v, bdf, bar, 1);
}

/* The VFIO_REGION_INFO_FLAG_* of region @index of @device, 0 on error. */
static inline uint32_t region_flags(int device, uint32_t index)
{
	struct vfio_region_info reg = { .argsz = sizeof(reg), .index = index };

	return ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &reg) ? 0 : reg.flags;
}

/* Lines in /proc/self/fd: the open file descriptors, and . and .. */
static inline int count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;

	while (dir && readdir(dir))
		n++;
	if (dir)
		closedir(dir);
	return n;
}

/* The line of /proc/self/fdinfo/@fd that starts with @key, value only. */
static inline int fdinfo(int fd, const char *key, char *val, size_t size)
{
	char path[64], buf[4096], *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (read_file(path, buf, sizeof(buf)))
		return -1;
	p = strstr(buf, key);
	if (!p)
		return -1;
	p += strlen(key);
	snprintf(val, size, "%.*s", (int)strcspn(p, "\n"), p);
	return 0;
}

/* ivshmem-plain, whose BAR 2 is RAM: the exporter of most tests. */
static inline int vfio_open(struct vdev *v)
{
	return vfio_open_dev(v, IVSHMEM_ID, BAR);
}

/* Offset of capability @id in the device's config space, or 0. */
static inline int find_cap(struct vdev *v, uint8_t id)
{
	uint8_t pos = 0, hdr[2];

	if (pread(v->device, &pos, 1, v->cfg_off + PCI_CAPABILITY_LIST) != 1)
		return 0;
	while (pos) {
		if (pread(v->device, hdr, 2, v->cfg_off + pos) != 2)
			return 0;
		if (hdr[0] == id)
			return pos;
		pos = hdr[1];
	}
	return 0;
}

static inline void vfio_close(struct vdev *v)
{
	if (v->device >= 0)
		close(v->device);
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	v->device = v->group = v->container = -1;
}

static inline int set_memory_decode(struct vdev *v, int on)
{
	uint16_t cmd;

	if (pread(v->device, &cmd, 2, v->cfg_off + PCI_COMMAND) != 2)
		return -1;
	cmd = on ? (cmd | PCI_COMMAND_MEMORY) : (cmd & ~PCI_COMMAND_MEMORY);
	return pwrite(v->device, &cmd, 2, v->cfg_off + PCI_COMMAND) == 2 ? 0 : -1;
}

/* VFIO_DEVICE_FEATURE_DMA_BUF with @nr ranges; the ioctl's result. */
static inline int export_ranges(int device, uint32_t region, uint32_t open_flags,
			 uint32_t flags, uint32_t nr,
			 const struct vfio_region_dma_range *ranges,
			 size_t argsz_ranges)
{
	size_t size = sizeof(struct vfio_device_feature) +
		      sizeof(struct vfio_device_feature_dma_buf) +
		      argsz_ranges * sizeof(*ranges);
	struct vfio_device_feature *feat = calloc(1, size);
	struct vfio_device_feature_dma_buf *get = (void *)feat->data;
	int ret, err;

	feat->argsz = size;
	feat->flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF;
	get->region_index = region;
	get->open_flags = open_flags;
	get->flags = flags;
	get->nr_ranges = nr;
	if (ranges)
		memcpy(get->dma_ranges, ranges, argsz_ranges * sizeof(*ranges));
	ret = ioctl(device, VFIO_DEVICE_FEATURE, feat);
	err = errno;
	free(feat);
	errno = err;
	return ret;
}

/* Open the test importer, loading its module first if needed. */
static inline int open_importer(void)
{
	if (access("/dev/dmabuf_importer", F_OK) &&
	    system("modprobe dmabuf_importer"))
		return -1;
	return open("/dev/dmabuf_importer", O_RDWR);
}

static inline int imp_attach(int imp, int dmabuf, uint32_t flags)
{
	struct imp_attach a = { .fd = dmabuf, .flags = flags };

	return ioctl(imp, IMP_ATTACH, &a) ? -errno : 0;
}

static inline int imp_map(int imp, uint32_t api, uint32_t pin,
		   struct imp_range *out, uint32_t *nr)
{
	struct imp_map m = { .api = api, .pin = pin, .nr = *nr,
			     .ranges = (uintptr_t)out };

	if (ioctl(imp, IMP_MAP, &m))
		return -errno;
	*nr = m.nr;
	return 0;
}

static inline struct imp_status imp_status(int imp)
{
	struct imp_status st = {};

	ioctl(imp, IMP_STATUS, &st);
	return st;
}

static inline int imp_dma(int imp, uint64_t offset, void *data, uint32_t len, int to)
{
	struct imp_dma d = { .offset = offset, .len = len, .to_dmabuf = to,
			     .data = (uintptr_t)data };

	return ioctl(imp, IMP_DMA, &d) ? -errno : 0;
}

static inline int imp_slow(int imp, uint32_t mode, uint32_t delay_ms)
{
	struct imp_slow sl = { .mode = mode, .delay_ms = delay_ms };

	return ioctl(imp, IMP_SLOW, &sl) ? -errno : 0;
}

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * Open @bdf's group and device into @v as vfio_open_group() does, trying
 * again for up to @wait_ms while the device is busy (EBUSY: closed, its
 * dma-bufs' importers not yet let go).  Return: 0, or the errno of the
 * last try, with @v closed.
 */
static inline int vfio_open_when_idle(struct vdev *v, const char *bdf,
				      int bar, double wait_ms)
{
	double end = now_ms() + wait_ms;
	int err;

	for (;;) {
		err = vfio_open_group(v, bdf, bar, 1) ? errno : 0;
		if (!err)
			return 0;
		vfio_close(v);
		if (err != EBUSY || now_ms() >= end)
			return err;
		usleep(20000);
	}
}

static inline void fill(uint8_t *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

#endif /* VFIO_UTIL_H */
