/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iommufd as a VMM drives it, for the kselftests and the benchmark:
 * an IOAS, MAP, MAP_FILE and UNMAP, and devices opened through their
 * vfio cdevs, bound to the iommufd and attached to an IOAS.
 */
#ifndef IOMMUFD_UTIL_H
#define IOMMUFD_UTIL_H

#include <linux/iommufd.h>

#include "vfio_util.h"

/* One device opened through its vfio cdev. */
struct cdev {
	char bdf[32];
	char driver[64];	/* the driver it had, bound again at the end */
	int fd;
	uint64_t cfg_off;
};

static inline int open_iommufd(void)
{
	return open("/dev/iommu", O_RDWR);
}

static inline int ioas_alloc(int iommufd, uint32_t *id)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };

	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &a))
		return -errno;
	*id = a.out_ioas_id;
	return 0;
}

/* IOMMU_IOAS_MAP_FILE; 0 and the IOVA in *iova, or -errno. */
static inline int map_file(int iommufd, uint32_t ioas, int fd, uint64_t start,
		    uint64_t length, uint64_t *iova, uint32_t flags)
{
	struct iommu_ioas_map_file m = {
		.size = sizeof(m), .flags = flags, .ioas_id = ioas, .fd = fd,
		.start = start, .length = length, .iova = iova ? *iova : 0,
	};

	if (ioctl(iommufd, IOMMU_IOAS_MAP_FILE, &m))
		return -errno;
	if (iova)
		*iova = m.iova;
	return 0;
}

#define RW	(IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)

static inline int map_user(int iommufd, uint32_t ioas, void *va, uint64_t length,
		    uint64_t *iova)
{
	struct iommu_ioas_map m = {
		.size = sizeof(m), .flags = RW, .ioas_id = ioas,
		.user_va = (uintptr_t)va, .length = length,
	};

	if (ioctl(iommufd, IOMMU_IOAS_MAP, &m))
		return -errno;
	*iova = m.iova;
	return 0;
}

/* Bytes unmapped from [iova, iova + length), or -errno. */
static inline long long unmap(int iommufd, uint32_t ioas, uint64_t iova,
		       uint64_t length)
{
	struct iommu_ioas_unmap u = {
		.size = sizeof(u), .ioas_id = ioas, .iova = iova,
		.length = length,
	};

	if (ioctl(iommufd, IOMMU_IOAS_UNMAP, &u))
		return -errno;
	return u.length;
}

/* Bytes mapped in @ioas, found by unmapping everything. */
static inline long long unmap_all(int iommufd, uint32_t ioas)
{
	return unmap(iommufd, ioas, 0, UINT64_MAX);
}

/*
 * Bind the device to vfio-pci, remembering its driver, open its cdev and
 * bind that to @iommufd, without which a cdev answers nothing else.
 */
static inline int cdev_open(struct cdev *c, const char *id, int iommufd)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind), .iommufd = iommufd,
	};
	struct vfio_region_info reg = {
		.argsz = sizeof(reg), .index = VFIO_PCI_CONFIG_REGION_INDEX,
	};
	char path[512], name[256];
	struct dirent *de;
	DIR *dir;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (find_pci(id, c->bdf))
		return -1;
	driver_of(c->bdf, c->driver, sizeof(c->driver));
	if (bind_vfio(c->bdf))
		return -1;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", c->bdf);
	dir = opendir(path);
	if (!dir)
		return -1;
	name[0] = 0;
	while ((de = readdir(dir)))
		if (!strncmp(de->d_name, "vfio", 4))
			snprintf(name, sizeof(name), "%s", de->d_name);
	closedir(dir);
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", name);
	c->fd = open(path, O_RDWR);
	if (c->fd < 0 || ioctl(c->fd, VFIO_DEVICE_BIND_IOMMUFD, &bind) ||
	    ioctl(c->fd, VFIO_DEVICE_GET_REGION_INFO, &reg))
		return -1;
	c->cfg_off = reg.offset;
	return 0;
}

/* Close the cdev; give the device back to the driver it had. */
static inline void cdev_close(struct cdev *c)
{
	char path[256];

	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (!c->bdf[0] || !strcmp(c->driver, "vfio-pci"))
		return;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", c->bdf);
	write_file(path, c->bdf);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", c->bdf);
	write_file(path, "\n");
	if (c->driver[0])
		write_file("/sys/bus/pci/drivers_probe", c->bdf);
}

static inline int cdev_attach(struct cdev *c, uint32_t ioas)
{
	struct vfio_device_attach_iommufd_pt at = {
		.argsz = sizeof(at), .pt_id = ioas,
	};

	return ioctl(c->fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at) ? -errno : 0;
}

/* Set, then clear, bits of the device's PCI_COMMAND. */
static inline int set_command(struct cdev *c, uint16_t set, uint16_t clear)
{
	uint16_t cmd;

	if (pread(c->fd, &cmd, 2, c->cfg_off + PCI_COMMAND) != 2)
		return -1;
	cmd = (cmd | set) & ~clear;
	return pwrite(c->fd, &cmd, 2, c->cfg_off + PCI_COMMAND) == 2 ? 0 : -1;
}

/* Offset and size of region @index of the device @fd. */
static inline int region(int fd, uint32_t index, uint64_t *off, uint64_t *size)
{
	struct vfio_region_info reg = { .argsz = sizeof(reg), .index = index };

	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &reg))
		return -1;
	*off = reg.offset;
	*size = reg.size;
	return 0;
}

#endif /* IOMMUFD_UTIL_H */
