// SPDX-License-Identifier: GPL-2.0-only
/*
 * Export slices of a vfio-pci device's BARs as dma-bufs.
 *
 * The exporter implements only the dma-buf range ops: an importer gets the
 * slices as DMA ranges for its own device, by PCI bus address when the two
 * devices talk through switches, mapped with dma_map_resource() when the
 * path crosses a host bridge.  Legacy sg_table importers are served by the
 * dma-buf core.  No struct pages exist for the BAR.
 *
 * Access is revoked whenever the user can no longer reach the BAR either:
 * memory decode off, reset, low power, and for good when the device is
 * closed.  Revocation runs move_notify, waits for the importers to unmap
 * and zaps CPU mappings of the dma-buf; restoring decode lets importers map
 * again.
 */
#include <linux/dma-buf.h>
#include <linux/dma-buf-ranges.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-resv.h>
#include <linux/pci-p2pdma.h>
#include <linux/seq_file.h>

#include "vfio_pci_priv.h"

MODULE_IMPORT_NS(DMA_BUF);

/* How long a revoke waits for importers to give their mappings back. */
#define VFIO_DMA_BUF_REVOKE_TIMEOUT_MS	5000

/**
 * struct vfio_pci_dma_buf - a dma-buf made of slices of one BAR
 * @dmabuf: the dma-buf
 * @vdev: the device; NULL once the device is closed and the dma-buf dead
 * @dmabufs_elm: entry in @vdev->dmabufs, under @vdev->memory_lock
 * @pdev: the PCI device, referenced for as long as the dma-buf exists
 * @bar: the BAR the slices are in
 * @revoked: importers may not map; under the dma-buf's reservation lock
 * @nr_mapped: mappings handed out and not yet given back
 * @unmapped: woken when @nr_mapped drops to 0
 * @nr_ranges: number of slices
 * @ranges: the slices, offsets into the BAR
 */
struct vfio_pci_dma_buf {
	struct dma_buf *dmabuf;
	struct vfio_pci_core_device *vdev;
	struct list_head dmabufs_elm;
	struct pci_dev *pdev;
	u32 bar;
	bool revoked;
	atomic_t nr_mapped;
	wait_queue_head_t unmapped;
	u32 nr_ranges;
	struct vfio_region_dma_range ranges[] __counted_by(nr_ranges);
};

/* Per attachment: how the importing device reaches the BAR. */
struct vfio_pci_dma_buf_attachment {
	enum pci_p2pdma_map_type map_type;
};

static int vfio_pci_dma_buf_attach(struct dma_buf *dmabuf,
				   struct dma_buf_attachment *attach)
{
	struct vfio_pci_dma_buf *priv = dmabuf->priv;
	struct vfio_pci_dma_buf_attachment *va;
	enum pci_p2pdma_map_type type;
	bool revoked;

	/* BAR memory has no struct pages: only P2P-aware importers. */
	if (!attach->peer2peer)
		return -EOPNOTSUPP;

	dma_resv_lock(dmabuf->resv, NULL);
	revoked = priv->revoked;
	dma_resv_unlock(dmabuf->resv);
	if (revoked)
		return -ENODEV;

	type = pci_p2pdma_client_map_type(priv->pdev, attach->dev);
	if (type != PCI_P2PDMA_MAP_BUS_ADDR &&
	    type != PCI_P2PDMA_MAP_THRU_HOST_BRIDGE)
		return -EOPNOTSUPP;

	va = kzalloc(sizeof(*va), GFP_KERNEL);
	if (!va)
		return -ENOMEM;
	va->map_type = type;
	attach->priv = va;
	return 0;
}

static void vfio_pci_dma_buf_detach(struct dma_buf *dmabuf,
				    struct dma_buf_attachment *attach)
{
	kfree(attach->priv);
}

/*
 * A pin promises the importer that the memory stays; BAR access can be
 * taken away by the user at any time, so only importers that give their
 * mappings back on move_notify even while pinned may pin.
 */
static int vfio_pci_dma_buf_pin(struct dma_buf_attachment *attach)
{
	return dma_buf_attachment_allows_revoke(attach) ? 0 : -EOPNOTSUPP;
}

static void vfio_pci_dma_buf_unpin(struct dma_buf_attachment *attach)
{
}

static void unmap_slices(struct dma_buf_attachment *attach,
			 struct dma_buf_ranges *ranges, u32 nr,
			 enum dma_data_direction dir)
{
	struct vfio_pci_dma_buf_attachment *va = attach->priv;
	u32 i;

	if (va->map_type != PCI_P2PDMA_MAP_THRU_HOST_BRIDGE)
		return;
	for (i = 0; i < nr; i++)
		dma_unmap_resource(attach->dev, ranges->ranges[i].addr,
				   ranges->ranges[i].len, dir, 0);
}

static struct dma_buf_ranges *
vfio_pci_dma_buf_map(struct dma_buf_attachment *attach,
		     enum dma_data_direction dir)
{
	struct vfio_pci_dma_buf *priv = attach->dmabuf->priv;
	struct vfio_pci_dma_buf_attachment *va = attach->priv;
	u64 mask = dma_get_mask(attach->dev);
	struct dma_buf_ranges *ranges;
	u32 i;

	dma_resv_assert_held(priv->dmabuf->resv);
	if (priv->revoked)
		return ERR_PTR(-ENODEV);

	ranges = dma_buf_ranges_alloc(priv->nr_ranges, GFP_KERNEL);
	if (!ranges)
		return ERR_PTR(-ENOMEM);

	for (i = 0; i < priv->nr_ranges; i++) {
		u64 offset = priv->ranges[i].offset;
		u64 len = priv->ranges[i].length;
		struct dma_buf_range *r = &ranges->ranges[i];

		r->len = len;
		if (va->map_type == PCI_P2PDMA_MAP_BUS_ADDR) {
			r->addr = pci_bus_address(priv->pdev, priv->bar) + offset;
			/* Never let the device see a truncated address. */
			if (r->addr + len - 1 > mask)
				goto err_unmap;
			continue;
		}
		r->addr = dma_map_resource(attach->dev,
					   pci_resource_start(priv->pdev, priv->bar) +
					   offset, len, dir, 0);
		if (dma_mapping_error(attach->dev, r->addr))
			goto err_unmap;
	}
	atomic_inc(&priv->nr_mapped);
	return ranges;

err_unmap:
	unmap_slices(attach, ranges, i, dir);
	dma_buf_ranges_free(ranges);
	return ERR_PTR(-EIO);
}

static void vfio_pci_dma_buf_unmap(struct dma_buf_attachment *attach,
				   struct dma_buf_ranges *ranges,
				   enum dma_data_direction dir)
{
	struct vfio_pci_dma_buf *priv = attach->dmabuf->priv;

	unmap_slices(attach, ranges, ranges->nr, dir);
	dma_buf_ranges_free(ranges);
	if (atomic_dec_and_test(&priv->nr_mapped))
		wake_up_all(&priv->unmapped);
}

/* Physical address of the page at byte @offset of the dma-buf. */
static phys_addr_t slice_phys(struct vfio_pci_dma_buf *priv, u64 offset)
{
	u32 i;

	for (i = 0; i < priv->nr_ranges; i++) {
		if (offset < priv->ranges[i].length)
			return pci_resource_start(priv->pdev, priv->bar) +
			       priv->ranges[i].offset + offset;
		offset -= priv->ranges[i].length;
	}
	return 0;
}

static vm_fault_t vfio_pci_dma_buf_fault(struct vm_fault *vmf)
{
	struct vfio_pci_dma_buf *priv = vmf->vma->vm_private_data;
	phys_addr_t phys = slice_phys(priv, (u64)vmf->pgoff << PAGE_SHIFT);
	vm_fault_t ret = VM_FAULT_SIGBUS;

	dma_resv_lock(priv->dmabuf->resv, NULL);
	if (!priv->revoked && phys)
		ret = vmf_insert_pfn(vmf->vma, vmf->address, PHYS_PFN(phys));
	dma_resv_unlock(priv->dmabuf->resv);
	return ret;
}

static const struct vm_operations_struct vfio_pci_dma_buf_vm_ops = {
	.fault = vfio_pci_dma_buf_fault,
};

/* CPU access: uncached, faulted a page at a time, zapped on revoke. */
static int vfio_pci_dma_buf_mmap(struct dma_buf *dmabuf,
				 struct vm_area_struct *vma)
{
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;

	vm_flags_set(vma, VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	vma->vm_ops = &vfio_pci_dma_buf_vm_ops;
	vma->vm_private_data = dmabuf->priv;
	return 0;
}

static void vfio_pci_dma_buf_show_fdinfo(struct seq_file *m,
					 struct dma_buf *dmabuf)
{
	struct vfio_pci_dma_buf *priv = dmabuf->priv;
	u32 i;

	seq_printf(m, "vfio-pci-dev:\t%s\n", pci_name(priv->pdev));
	seq_printf(m, "vfio-pci-bar:\t%u\n", priv->bar);
	for (i = 0; i < priv->nr_ranges; i++)
		seq_printf(m, "vfio-pci-range:\t%#llx+%#llx\n",
			   priv->ranges[i].offset, priv->ranges[i].length);
	seq_printf(m, "vfio-pci-revoked:\t%d\n", READ_ONCE(priv->revoked));
}

static void vfio_pci_dma_buf_release(struct dma_buf *dmabuf)
{
	struct vfio_pci_dma_buf *priv = dmabuf->priv;

	/*
	 * A dma-buf still on the device's list: vfio_pci_dma_buf_cleanup()
	 * skips dma-bufs being released, and the registration reference keeps
	 * the device alive until this unlinks itself.
	 */
	if (priv->vdev) {
		down_write(&priv->vdev->memory_lock);
		list_del_init(&priv->dmabufs_elm);
		up_write(&priv->vdev->memory_lock);
		vfio_device_put_registration(&priv->vdev->vdev);
	}
	pci_dev_put(priv->pdev);
	kfree(priv);
}

static const struct dma_buf_ops vfio_pci_dma_buf_ops = {
	.attach = vfio_pci_dma_buf_attach,
	.detach = vfio_pci_dma_buf_detach,
	.pin = vfio_pci_dma_buf_pin,
	.unpin = vfio_pci_dma_buf_unpin,
	.map_dma_ranges = vfio_pci_dma_buf_map,
	.unmap_dma_ranges = vfio_pci_dma_buf_unmap,
	.mmap = vfio_pci_dma_buf_mmap,
	.show_fdinfo = vfio_pci_dma_buf_show_fdinfo,
	.release = vfio_pci_dma_buf_release,
};

/* Check the user's slices of @bar and add up their lengths in @size. */
static int check_ranges(struct pci_dev *pdev, u32 bar,
			const struct vfio_region_dma_range *ranges, u32 nr,
			u64 *size)
{
	resource_size_t start = pci_resource_start(pdev, bar);
	resource_size_t len = pci_resource_len(pdev, bar);
	u64 total = 0, end;
	u32 i;

	if (!len || !(pci_resource_flags(pdev, bar) & IORESOURCE_MEM))
		return -EINVAL;

	for (i = 0; i < nr; i++) {
		u64 offset = ranges[i].offset, length = ranges[i].length;

		if (!length || !PAGE_ALIGNED(offset) || !PAGE_ALIGNED(length))
			return -EINVAL;
		if (check_add_overflow(total, length, &total))
			return -EINVAL;
		if (check_add_overflow(start, offset, &end) ||
		    check_add_overflow(end, length, &end))
			return -EOVERFLOW;
		if (offset + length > len)
			return -EINVAL;
	}
	*size = total;
	return 0;
}

/**
 * vfio_pci_core_feature_dma_buf - VFIO_DEVICE_FEATURE_DMA_BUF
 * @device: the vfio-pci device
 * @flags: the feature flags of the ioctl
 * @uarg: the user's struct vfio_device_feature_dma_buf
 * @argsz: size of @uarg, with its ranges
 *
 * Return: a new dma-buf file descriptor, or an errno as documented for
 * VFIO_DEVICE_FEATURE_DMA_BUF in include/uapi/linux/vfio.h.
 */
int vfio_pci_core_feature_dma_buf(struct vfio_device *device, u32 flags,
				  void __user *uarg, size_t argsz)
{
	struct vfio_pci_core_device *vdev =
		container_of(device, struct vfio_pci_core_device, vdev);
	struct vfio_device_feature_dma_buf __user *arg = uarg;
	const u32 open_ok = O_ACCMODE | O_CLOEXEC | O_NONBLOCK;
	struct vfio_device_feature_dma_buf get;
	struct vfio_region_dma_range *ranges;
	DEFINE_DMA_BUF_EXPORT_INFO(exp_info);
	struct vfio_pci_dma_buf *priv;
	u64 size;
	int ret;

	ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_GET,
				 sizeof(get));
	if (ret != 1)
		return ret;

	if (copy_from_user(&get, arg, sizeof(get)))
		return -EFAULT;
	if (!get.nr_ranges || get.flags)
		return -EINVAL;
	if (get.region_index >= VFIO_PCI_ROM_REGION_INDEX)
		return -ENODEV;
	if (get.nr_ranges > VFIO_DEVICE_DMA_BUF_MAX_RANGES)
		return -E2BIG;
	if (argsz < struct_size(&get, dma_ranges, get.nr_ranges))
		return -EINVAL;
	if ((get.open_flags & ~open_ok) || (get.open_flags & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;

	ranges = memdup_array_user(&arg->dma_ranges, get.nr_ranges,
				   sizeof(*ranges));
	if (IS_ERR(ranges))
		return PTR_ERR(ranges);

	ret = check_ranges(vdev->pdev, get.region_index, ranges, get.nr_ranges,
			   &size);
	if (ret)
		goto err_free_ranges;

	ret = -ENOMEM;
	priv = kzalloc(struct_size(priv, ranges, get.nr_ranges), GFP_KERNEL);
	if (!priv)
		goto err_free_ranges;
	priv->nr_ranges = get.nr_ranges;
	memcpy(priv->ranges, ranges, flex_array_size(priv, ranges, priv->nr_ranges));
	kfree(ranges);
	priv->bar = get.region_index;
	priv->pdev = pci_dev_get(vdev->pdev);
	INIT_LIST_HEAD(&priv->dmabufs_elm);
	init_waitqueue_head(&priv->unmapped);

	exp_info.ops = &vfio_pci_dma_buf_ops;
	exp_info.size = size;
	exp_info.flags = get.open_flags;
	exp_info.priv = priv;
	priv->dmabuf = dma_buf_export(&exp_info);
	if (IS_ERR(priv->dmabuf)) {
		ret = PTR_ERR(priv->dmabuf);
		pci_dev_put(priv->pdev);
		kfree(priv);
		return ret;
	}

	/* From here dma_buf_put() frees priv. */
	down_write(&vdev->memory_lock);
	if (!vfio_device_try_get_registration(&vdev->vdev)) {
		up_write(&vdev->memory_lock);
		dma_buf_put(priv->dmabuf);
		return -ENODEV;
	}
	priv->vdev = vdev;
	dma_resv_lock(priv->dmabuf->resv, NULL);
	priv->revoked = vdev->pm_runtime_engaged ||
			!__vfio_pci_memory_enabled(vdev);
	dma_resv_unlock(priv->dmabuf->resv);
	list_add_tail(&priv->dmabufs_elm, &vdev->dmabufs);
	up_write(&vdev->memory_lock);

	ret = dma_buf_fd(priv->dmabuf, get.open_flags);
	if (ret < 0)
		dma_buf_put(priv->dmabuf);
	return ret;

err_free_ranges:
	kfree(ranges);
	return ret;
}

/* Flip @priv's access; on revoke, wait for importers to let go. */
static void set_revoked(struct vfio_pci_dma_buf *priv, bool revoked)
{
	long left;

	dma_resv_lock(priv->dmabuf->resv, NULL);
	if (priv->revoked == revoked) {
		dma_resv_unlock(priv->dmabuf->resv);
		return;
	}
	priv->revoked = revoked;
	dma_buf_move_notify(priv->dmabuf);
	dma_resv_unlock(priv->dmabuf->resv);
	if (!revoked)
		return;

	unmap_mapping_range(priv->dmabuf->file->f_mapping, 0, 0, true);
	left = wait_event_timeout(priv->unmapped,
				  !atomic_read(&priv->nr_mapped),
				  msecs_to_jiffies(VFIO_DMA_BUF_REVOKE_TIMEOUT_MS));
	if (!left)
		pci_err(priv->pdev,
			"dma-buf importer still maps BAR %u %u ms after revoke\n",
			priv->bar, VFIO_DMA_BUF_REVOKE_TIMEOUT_MS);
}

/*
 * Apply @revoked to every live dma-buf of @vdev.  One being released (no
 * file reference left) has no importers or CPU mappings to act on.
 */
static void set_all_revoked(struct vfio_pci_core_device *vdev, bool revoked)
{
	struct vfio_pci_dma_buf *priv;

	lockdep_assert_held_write(&vdev->memory_lock);
	list_for_each_entry(priv, &vdev->dmabufs, dmabufs_elm) {
		if (!get_file_active(&priv->dmabuf->file))
			continue;
		set_revoked(priv, revoked);
		dma_buf_put(priv->dmabuf);
	}
}

/**
 * vfio_pci_dma_buf_revoke - take BAR access away from every importer
 * @vdev: the device, with memory_lock held for writing
 *
 * Called wherever the user's own BAR mappings are zapped.  When it
 * returns, importers have been told through move_notify and have given
 * their mappings back, or VFIO_DMA_BUF_REVOKE_TIMEOUT_MS has passed and
 * an error is logged, and CPU mappings of the dma-bufs are zapped.
 */
void vfio_pci_dma_buf_revoke(struct vfio_pci_core_device *vdev)
{
	set_all_revoked(vdev, true);
}

/**
 * vfio_pci_dma_buf_restore - give BAR access back if the BARs are usable
 * @vdev: the device, with memory_lock held for writing
 *
 * Called where memory decode or power may have come back; importers are
 * told through move_notify that they can map again.
 */
void vfio_pci_dma_buf_restore(struct vfio_pci_core_device *vdev)
{
	lockdep_assert_held_write(&vdev->memory_lock);
	if (vdev->pm_runtime_engaged || !__vfio_pci_memory_enabled(vdev))
		return;
	set_all_revoked(vdev, false);
}

/**
 * vfio_pci_dma_buf_cleanup - revoke for good when the device is closed
 * @vdev: the device
 *
 * The dma-bufs stay valid files but can never be mapped again, and they
 * no longer hold the device's registration, so unbinding can proceed.
 */
void vfio_pci_dma_buf_cleanup(struct vfio_pci_core_device *vdev)
{
	struct vfio_pci_dma_buf *priv, *tmp;

	down_write(&vdev->memory_lock);
	list_for_each_entry_safe(priv, tmp, &vdev->dmabufs, dmabufs_elm) {
		if (!get_file_active(&priv->dmabuf->file))
			continue;
		set_revoked(priv, true);
		dma_resv_lock(priv->dmabuf->resv, NULL);
		priv->vdev = NULL;
		dma_resv_unlock(priv->dmabuf->resv);
		list_del_init(&priv->dmabufs_elm);
		vfio_device_put_registration(&vdev->vdev);
		dma_buf_put(priv->dmabuf);
	}
	up_write(&vdev->memory_lock);
}
