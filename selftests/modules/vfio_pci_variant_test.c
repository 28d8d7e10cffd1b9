// SPDX-License-Identifier: GPL-2.0
/*
 * A test-only vfio-pci-core variant driver for QEMU's ivshmem-plain.
 *
 * VFIO_DEVICE_FEATURE_DMA_BUF is handled by the shared core, but a variant
 * driver may show the user less of a BAR than the device has: hisi_acc
 * reports only the first half of BAR 2 to keep its migration registers
 * away from the user.  A dma-buf must not reach what the driver hides, so
 * a driver offers the feature only by describing its regions through
 * &vfio_pci_device_ops.get_dmabuf_phys.
 *
 * This driver copies hisi_acc's restriction: BAR 2 is reported, read,
 * written and mmapped only up to half the physical BAR.  With dmabuf=0 (the
 * default) it does not opt in, so the feature must be absent; with
 * dmabuf=1 it opts in with a get_dmabuf_phys that refuses any slice of
 * BAR 2 ending past the half.  The parameter is read at probe.
 *
 * It matches only through driver_override; selftests/vfio_variant_test.c
 * binds ivshmem to it.
 */
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#define IVSHMEM_DEVICE_ID	0x1110
#define VARIANT_BAR		VFIO_PCI_BAR2_REGION_INDEX

static bool dmabuf;
module_param(dmabuf, bool, 0444);
MODULE_PARM_DESC(dmabuf,
		 "offer VFIO_DEVICE_FEATURE_DMA_BUF, limited to the reported half of BAR 2 (read at probe)");

static struct vfio_pci_core_device *to_core(struct vfio_device *core_vdev)
{
	return container_of(core_vdev, struct vfio_pci_core_device, vdev);
}

/* The part of BAR 2 the user may see: its first half. */
static resource_size_t variant_bar_end(struct vfio_pci_core_device *vdev)
{
	return pci_resource_len(vdev->pdev, VARIANT_BAR) / 2;
}

static int variant_get_dmabuf_phys(struct vfio_pci_core_device *vdev,
				   unsigned int region_index,
				   const struct vfio_region_dma_range *dma_ranges,
				   size_t nr_ranges, phys_addr_t *phys)
{
	resource_size_t end = variant_bar_end(vdev);
	size_t i;

	if (region_index == VARIANT_BAR) {
		for (i = 0; i < nr_ranges; i++) {
			if (dma_ranges[i].offset >= end ||
			    dma_ranges[i].length > end - dma_ranges[i].offset)
				return -EINVAL;
		}
	}

	return vfio_pci_core_get_dmabuf_phys(vdev, region_index, dma_ranges,
					     nr_ranges, phys);
}

static const struct vfio_pci_device_ops variant_pci_ops = {
	.get_dmabuf_phys = variant_get_dmabuf_phys,
};

static int variant_rw_check(struct vfio_device *core_vdev, size_t count,
			    loff_t *ppos, size_t *new_count)
{
	unsigned int index = VFIO_PCI_OFFSET_TO_INDEX(*ppos);

	if (index == VARIANT_BAR) {
		loff_t pos = *ppos & VFIO_PCI_OFFSET_MASK;
		resource_size_t end = variant_bar_end(to_core(core_vdev));

		if (pos >= end)
			return -EINVAL;

		*new_count = min(count, (size_t)(end - pos));
	}

	return 0;
}

static ssize_t variant_read(struct vfio_device *core_vdev, char __user *buf,
			    size_t count, loff_t *ppos)
{
	size_t new_count = count;
	int ret;

	ret = variant_rw_check(core_vdev, count, ppos, &new_count);
	if (ret)
		return ret;

	return vfio_pci_core_read(core_vdev, buf, new_count, ppos);
}

static ssize_t variant_write(struct vfio_device *core_vdev,
			     const char __user *buf, size_t count,
			     loff_t *ppos)
{
	size_t new_count = count;
	int ret;

	ret = variant_rw_check(core_vdev, count, ppos, &new_count);
	if (ret)
		return ret;

	return vfio_pci_core_write(core_vdev, buf, new_count, ppos);
}

static int variant_mmap(struct vfio_device *core_vdev,
			struct vm_area_struct *vma)
{
	unsigned int index;

	index = vma->vm_pgoff >> (VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT);
	if (index == VARIANT_BAR) {
		u64 req_len, pgoff, req_start;
		resource_size_t end = variant_bar_end(to_core(core_vdev));

		req_len = vma->vm_end - vma->vm_start;
		pgoff = vma->vm_pgoff &
			((1U << (VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT)) - 1);
		req_start = pgoff << PAGE_SHIFT;

		if (req_start + req_len > end)
			return -EINVAL;
	}

	return vfio_pci_core_mmap(core_vdev, vma);
}

static long variant_ioctl(struct vfio_device *core_vdev, unsigned int cmd,
			  unsigned long arg)
{
	if (cmd == VFIO_DEVICE_GET_REGION_INFO) {
		struct vfio_region_info info;
		unsigned long minsz;

		minsz = offsetofend(struct vfio_region_info, offset);

		if (copy_from_user(&info, (void __user *)arg, minsz))
			return -EFAULT;

		if (info.argsz < minsz)
			return -EINVAL;

		if (info.index == VARIANT_BAR) {
			info.offset = VFIO_PCI_INDEX_TO_OFFSET(info.index);
			info.size = variant_bar_end(to_core(core_vdev));
			info.flags = VFIO_REGION_INFO_FLAG_READ |
				     VFIO_REGION_INFO_FLAG_WRITE |
				     VFIO_REGION_INFO_FLAG_MMAP;

			return copy_to_user((void __user *)arg, &info, minsz) ?
			       -EFAULT : 0;
		}
	}

	return vfio_pci_core_ioctl(core_vdev, cmd, arg);
}

static int variant_open_device(struct vfio_device *core_vdev)
{
	struct vfio_pci_core_device *vdev = to_core(core_vdev);
	int ret;

	ret = vfio_pci_core_enable(vdev);
	if (ret)
		return ret;

	vfio_pci_core_finish_enable(vdev);
	return 0;
}

static const struct vfio_device_ops variant_ops = {
	.name = "vfio-pci-variant-test",
	.init = vfio_pci_core_init_dev,
	.release = vfio_pci_core_release_dev,
	.open_device = variant_open_device,
	.close_device = vfio_pci_core_close_device,
	.ioctl = variant_ioctl,
	.device_feature = vfio_pci_core_ioctl_feature,
	.read = variant_read,
	.write = variant_write,
	.mmap = variant_mmap,
	.request = vfio_pci_core_request,
	.match = vfio_pci_core_match,
	.bind_iommufd = vfio_iommufd_physical_bind,
	.unbind_iommufd = vfio_iommufd_physical_unbind,
	.attach_ioas = vfio_iommufd_physical_attach_ioas,
	.detach_ioas = vfio_iommufd_physical_detach_ioas,
};

static int variant_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct vfio_pci_core_device *vdev;
	int ret;

	/* Half of BAR 2 must still be a whole number of pages. */
	if (!(pci_resource_flags(pdev, VARIANT_BAR) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, VARIANT_BAR) < 2 * PAGE_SIZE)
		return -ENODEV;

	vdev = vfio_alloc_device(vfio_pci_core_device, vdev, &pdev->dev,
				 &variant_ops);
	if (IS_ERR(vdev))
		return PTR_ERR(vdev);

	if (dmabuf)
		vdev->pci_ops = &variant_pci_ops;

	dev_set_drvdata(&pdev->dev, vdev);
	ret = vfio_pci_core_register_device(vdev);
	if (ret)
		goto out_put_vdev;
	return 0;

out_put_vdev:
	vfio_put_device(&vdev->vdev);
	return ret;
}

static void variant_remove(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *vdev = dev_get_drvdata(&pdev->dev);

	vfio_pci_core_unregister_device(vdev);
	vfio_put_device(&vdev->vdev);
}

static const struct pci_device_id variant_table[] = {
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(PCI_VENDOR_ID_REDHAT_QUMRANET,
					  IVSHMEM_DEVICE_ID) },
	{ }
};

MODULE_DEVICE_TABLE(pci, variant_table);

static struct pci_driver variant_driver = {
	.name = KBUILD_MODNAME,
	.id_table = variant_table,
	.probe = variant_probe,
	.remove = variant_remove,
	.err_handler = &vfio_pci_core_err_handlers,
	.driver_managed_dma = true,
};

module_pci_driver(variant_driver);

MODULE_DESCRIPTION("Test-only vfio-pci variant driver hiding half of ivshmem's BAR 2");
MODULE_LICENSE("GPL");
