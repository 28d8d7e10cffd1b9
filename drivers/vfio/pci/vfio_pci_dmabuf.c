// SPDX-License-Identifier: GPL-2.0-only
/*
 * Export slices of a vfio-pci device's BARs as dma-bufs.
 *
 * The exporter implements only the dma-buf range ops: an importer gets the
 * slices as DMA ranges for its own device, by PCI bus address when the two
 * devices talk through switches, mapped with dma_map_resource() when the
 * path crosses a host bridge.  Legacy sg_table importers are served by the
 * dma-buf core.  No struct pages exist for the BAR.  For an importer that
 * owns IOMMU page tables (iommufd) the dma-buf core takes the slices'
 * physical addresses instead and maps them into the importer's IOMMU
 * domains, for the devices the importer asks about: those whose host
 * bridge forwards their requests, translated by the IOMMU, to the BAR's.
 *
 * Only drivers that describe their regions offer the feature
 * (vfio_pci_core_device.pci_ops->get_dmabuf_phys): a variant driver may
 * hide parts of a BAR that a dma-buf must not reach either.
 *
 * Access is revoked whenever the user can no longer reach the BAR either:
 * memory decode off, any reset (vfio's own, hot resets, and resets from
 * outside vfio through reset_prepare), low power, an AER or DPC report of
 * a failed link, and for good when the device is closed.  A revoke tells
 * every dma-buf's importers through move_notify first (of every device,
 * for a hot reset), zaps CPU mappings, then waits, without a bound, for
 * all of them to give their mappings back and for the fences they had
 * queued: only importers that give mappings back within move_notify may
 * attach, so the wait is short unless an importer breaks that promise or
 * a fence never signals.  The wait can be killed where the user asked for
 * the revoke (a config write, a reset ioctl, low power, a hot reset): the
 * call fails and the dma-bufs stay revoked.  An error report does not
 * wait: the link no longer carries peers' requests.  Restoring decode
 * lets importers map again, and has the core map again what it unmapped
 * from IOMMU domains.
 */
#include <linux/delay.h>
#include <linux/dma-buf.h>
#include <linux/dma-buf-phys.h>
#include <linux/dma-buf-ranges.h>
#include <linux/dma-fence.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-resv.h>
#include <linux/iommu.h>
#include <linux/pci-p2pdma.h>
#include <linux/seq_file.h>

#include "vfio_pci_priv.h"

MODULE_IMPORT_NS(DMA_BUF);

/* How often a revoke names the importers it still waits for. */
#define VFIO_DMA_BUF_REPORT_MS	5000

/**
 * struct vfio_pci_dma_buf - a dma-buf made of slices of one BAR
 * @dmabuf: the dma-buf
 * @vdev: the device; NULL once the device is closed and the dma-buf dead
 * @dmabufs_elm: entry in @vdev->dmabufs.list, under @vdev->dmabufs.lock
 * @pdev: the PCI device, referenced for as long as the dma-buf exists
 * @bar: the BAR the slices are in
 * @revoked: importers may not map; under the dma-buf's reservation lock
 * @nr_mapped: mappings handed out and not yet given back
 * @unmapped: woken when @nr_mapped drops to 0
 * @revoke_fences: the reservation's fences when access was revoked, until
 *	a wait for them ends; under the device's dmabufs.lock
 * @all_fences: no memory for @revoke_fences: wait for every fence of the
 *	reservation instead; under dmabufs.lock
 * @unsettled: revoked while an importer held a mapping or a fence was
 *	pending, and not yet waited for to the end (a killed wait leaves it
 *	so for the next revoke to finish); under dmabufs.lock
 * @flips: how often @revoked changed, so that a wait made without the lock
 *	knows whether it still waits for the current revoke; under
 *	dmabufs.lock and the reservation lock
 * @nr_ranges: number of slices
 * @ranges: the slices: where the user asked for them in the region, and
 *	their CPU physical address from the driver's get_dmabuf_phys
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
	struct dma_fence *revoke_fences;
	bool all_fences;
	bool unsettled;
	u32 flips;
	u32 nr_ranges;
	struct vfio_pci_dma_buf_range {
		u64 offset;
		u64 length;
		phys_addr_t phys;
	} ranges[] __counted_by(nr_ranges);
};

/*
 * MMIO has no CPU cache lines to sync, and several importers may map the
 * same BAR at once, which DMA-API debug allows only without CPU syncs.
 */
#define VFIO_DMA_BUF_MAP_ATTRS	DMA_ATTR_SKIP_CPU_SYNC

/* Per attachment, under the dma-buf's reservation lock. */
struct vfio_pci_dma_buf_attachment {
	enum pci_p2pdma_map_type p2p_type;	/* how the importer reaches the BAR */
	u32 nr_mapped;				/* to name a stuck importer */
};

static int vfio_pci_dma_buf_attach(struct dma_buf *dmabuf,
				   struct dma_buf_attachment *attach)
{
	struct vfio_pci_dma_buf *priv = dmabuf->priv;
	struct vfio_pci_dma_buf_attachment *va;
	enum pci_p2pdma_map_type type;

	/*
	 * BAR memory has no struct pages: only P2P-aware importers.  Access
	 * can be taken away at any time, and a revoke must end all DMA before
	 * it returns: only importers that give their mappings back within
	 * move_notify.  Attach works while revoked; map fails until access
	 * comes back (the core maps IOMMU domains again by itself).
	 */
	if (!attach->peer2peer || !dma_buf_attach_allows_revoke(attach))
		return -EOPNOTSUPP;

	if (attach->map_type == DMA_BUF_MAP_IOMMU) {
		/* The importer asks per device: vfio_pci_dma_buf_reachable() */
		type = PCI_P2PDMA_MAP_THRU_HOST_BRIDGE;
	} else {
		type = pci_p2pdma_client_map_type(priv->pdev, attach->dev);
		if (type != PCI_P2PDMA_MAP_BUS_ADDR &&
		    type != PCI_P2PDMA_MAP_THRU_HOST_BRIDGE)
			return -EOPNOTSUPP;
	}

	va = kzalloc(sizeof(*va), GFP_KERNEL);
	if (!va)
		return -ENOMEM;
	va->p2p_type = type;
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
 * taken away by the user at any time, which every importer that attached
 * accepts (it gives its mappings back on move_notify even while pinned).
 */
static int vfio_pci_dma_buf_pin(struct dma_buf_attachment *attach)
{
	return 0;
}

static void vfio_pci_dma_buf_unpin(struct dma_buf_attachment *attach)
{
}

/* Count the mappings a revoke waits for. */
static void mapped(struct dma_buf_attachment *attach)
{
	struct vfio_pci_dma_buf *priv = attach->dmabuf->priv;
	struct vfio_pci_dma_buf_attachment *va = attach->priv;

	va->nr_mapped++;
	atomic_inc(&priv->nr_mapped);
}

static void unmapped(struct dma_buf_attachment *attach)
{
	struct vfio_pci_dma_buf *priv = attach->dmabuf->priv;
	struct vfio_pci_dma_buf_attachment *va = attach->priv;

	va->nr_mapped--;
	if (atomic_dec_and_test(&priv->nr_mapped))
		wake_up_all(&priv->unmapped);
}

static void unmap_slices(struct dma_buf_attachment *attach,
			 struct dma_buf_ranges *ranges, u32 nr,
			 enum dma_data_direction dir)
{
	struct vfio_pci_dma_buf_attachment *va = attach->priv;
	u32 i;

	if (va->p2p_type != PCI_P2PDMA_MAP_THRU_HOST_BRIDGE)
		return;
	for (i = 0; i < nr; i++)
		dma_unmap_resource(attach->dev, ranges->ranges[i].addr,
				   ranges->ranges[i].len, dir,
				   VFIO_DMA_BUF_MAP_ATTRS);
}

/* Does @dev reach physical addresses untranslated? */
static bool maps_directly(struct device *dev)
{
	struct iommu_domain *domain = iommu_get_domain_for_dev(dev);

	return !domain || domain->type == IOMMU_DOMAIN_IDENTITY;
}

/* The address a switch-local peer uses for @phys in the exported BAR. */
static dma_addr_t bus_address(struct vfio_pci_dma_buf *priv, phys_addr_t phys)
{
	return pci_bus_address(priv->pdev, priv->bar) +
	       (phys - pci_resource_start(priv->pdev, priv->bar));
}

static struct dma_buf_ranges *
vfio_pci_dma_buf_map(struct dma_buf_attachment *attach,
		     enum dma_data_direction dir)
{
	struct vfio_pci_dma_buf *priv = attach->dmabuf->priv;
	struct vfio_pci_dma_buf_attachment *va = attach->priv;
	u64 mask = dma_get_mask(attach->dev);
	u64 reach = min_not_zero(mask, attach->dev->bus_dma_limit);
	bool direct = maps_directly(attach->dev);
	struct dma_buf_ranges *ranges;
	u32 i;

	dma_resv_assert_held(priv->dmabuf->resv);
	if (priv->revoked)
		return ERR_PTR(-ENODEV);

	ranges = dma_buf_ranges_alloc(priv->nr_ranges, GFP_KERNEL);
	if (!ranges)
		return ERR_PTR(-ENOMEM);

	for (i = 0; i < priv->nr_ranges; i++) {
		phys_addr_t phys = priv->ranges[i].phys;
		u64 len = priv->ranges[i].length;
		struct dma_buf_range *r = &ranges->ranges[i];

		r->len = len;
		if (va->p2p_type == PCI_P2PDMA_MAP_BUS_ADDR) {
			r->addr = bus_address(priv, phys);
			/* Never let the device see a truncated address. */
			if (r->addr + len - 1 > mask)
				goto err_unmap;
			continue;
		}
		/* dma-direct warns on what the device cannot reach. */
		if (direct && phys + len - 1 > reach)
			goto err_unmap;
		r->addr = dma_map_resource(attach->dev, phys, len, dir,
					   VFIO_DMA_BUF_MAP_ATTRS);
		if (dma_mapping_error(attach->dev, r->addr))
			goto err_unmap;
	}
	mapped(attach);
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
	unmap_slices(attach, ranges, ranges->nr, dir);
	dma_buf_ranges_free(ranges);
	unmapped(attach);
}

/* For the core's IOMMU-domain mappings: the slices as they are. */
static struct dma_buf_phys_ranges *
vfio_pci_dma_buf_get_phys(struct dma_buf_attachment *attach)
{
	struct vfio_pci_dma_buf *priv = attach->dmabuf->priv;
	struct dma_buf_phys_ranges *ranges;
	u32 i;

	dma_resv_assert_held(priv->dmabuf->resv);
	if (priv->revoked)
		return ERR_PTR(-ENODEV);

	ranges = dma_buf_phys_ranges_alloc(priv->nr_ranges, GFP_KERNEL);
	if (!ranges)
		return ERR_PTR(-ENOMEM);
	for (i = 0; i < priv->nr_ranges; i++) {
		ranges->ranges[i].addr = priv->ranges[i].phys;
		ranges->ranges[i].len = priv->ranges[i].length;
	}
	mapped(attach);
	return ranges;
}

static void vfio_pci_dma_buf_put_phys(struct dma_buf_attachment *attach,
				      struct dma_buf_phys_ranges *ranges)
{
	dma_buf_phys_ranges_free(ranges);
	unmapped(attach);
}

/*
 * For IOMMU page tables: @dev's requests are translated at the root
 * complex, so they reach the BAR through the host bridges whatever the
 * switches between the two devices do.
 */
static bool vfio_pci_dma_buf_reachable(struct dma_buf_attachment *attach,
				       struct device *dev)
{
	struct vfio_pci_dma_buf *priv = attach->dmabuf->priv;

	return pci_p2pdma_host_bridge_forwards(priv->pdev, dev);
}

/* Physical address of the page at byte @offset of the dma-buf. */
static phys_addr_t slice_phys(struct vfio_pci_dma_buf *priv, u64 offset)
{
	u32 i;

	for (i = 0; i < priv->nr_ranges; i++) {
		if (offset < priv->ranges[i].length)
			return priv->ranges[i].phys + offset;
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

/*
 * CPU access: uncached, faulted a page at a time, zapped on revoke.  Only
 * shared mappings; one of a read-only file lacks VM_SHARED but has
 * VM_MAYSHARE, and mmap() has already held its access to the file's.
 */
static int vfio_pci_dma_buf_mmap(struct dma_buf *dmabuf,
				 struct vm_area_struct *vma)
{
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;

	/* As vfio_pci_core_mmap() maps the BARs. */
	vm_flags_set(vma, VM_ALLOW_ANY_UNCACHED | VM_IO | VM_PFNMAP |
		     VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	vma->vm_page_prot = pgprot_decrypted(vma->vm_page_prot);
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
		mutex_lock(&priv->vdev->dmabufs.lock);
		list_del_init(&priv->dmabufs_elm);
		mutex_unlock(&priv->vdev->dmabufs.lock);
		vfio_device_put_registration(&priv->vdev->vdev);
	}
	dma_fence_put(priv->revoke_fences);
	pci_dev_put(priv->pdev);
	kvfree(priv);
}

static const struct dma_buf_ops vfio_pci_dma_buf_ops = {
	.attach = vfio_pci_dma_buf_attach,
	.detach = vfio_pci_dma_buf_detach,
	.pin = vfio_pci_dma_buf_pin,
	.unpin = vfio_pci_dma_buf_unpin,
	.map_dma_ranges = vfio_pci_dma_buf_map,
	.unmap_dma_ranges = vfio_pci_dma_buf_unmap,
	.get_phys_ranges = vfio_pci_dma_buf_get_phys,
	.put_phys_ranges = vfio_pci_dma_buf_put_phys,
	.iommu_reachable = vfio_pci_dma_buf_reachable,
	.mmap = vfio_pci_dma_buf_mmap,
	.show_fdinfo = vfio_pci_dma_buf_show_fdinfo,
	.release = vfio_pci_dma_buf_release,
};

/*
 * The checks that need no address, in the order of the uAPI's errors:
 * every slice's length and alignment, then their sum, which becomes the
 * dma-buf's size.
 */
static int check_lengths(const struct vfio_region_dma_range *ranges, u32 nr,
			 u64 *size)
{
	u64 total = 0;
	u32 i;

	for (i = 0; i < nr; i++) {
		if (!ranges[i].length || !PAGE_ALIGNED(ranges[i].offset) ||
		    !PAGE_ALIGNED(ranges[i].length))
			return -EINVAL;
		if (check_add_overflow(total, ranges[i].length, &total))
			return -EINVAL;
	}
	/* A file size is an loff_t. */
	if (total > S64_MAX)
		return -EINVAL;
	*size = total;
	return 0;
}

/*
 * How much of BAR @bar a dma-buf may cover: the BAR, or, for drivers whose
 * regions are the physical BARs, the whole page of a BAR smaller than a
 * page that the user may mmap, a page vfio_pci_probe_mmaps() reserved for
 * the device alone.  A variant driver decides about its own regions.
 */
static resource_size_t bar_extent(struct vfio_pci_core_device *vdev, u32 bar)
{
	resource_size_t len = pci_resource_len(vdev->pdev, bar);

	return len && len < PAGE_SIZE && vdev->bar_mmap_supported[bar] &&
	       vdev->pci_ops->get_dmabuf_phys == vfio_pci_core_get_dmabuf_phys ?
	       PAGE_SIZE : len;
}

/**
 * vfio_pci_core_get_dmabuf_phys - locate slices of a physical BAR
 * @vdev: the device
 * @region_index: the BAR
 * @dma_ranges: the slices, offsets into the BAR; their lengths are checked
 * @nr_ranges: number of slices
 * @phys: filled with the CPU physical address of each slice
 *
 * The &vfio_pci_device_ops.get_dmabuf_phys of drivers whose BAR regions
 * are the whole physical BARs, such as vfio-pci.  A BAR smaller than a
 * page that the user may mmap reaches to the end of its page.
 *
 * Return: 0; -EINVAL for a BAR that is absent or not memory, or a slice
 * ending past its end; -EOVERFLOW when the BAR's address plus a slice's
 * offset and length overflows.
 */
int vfio_pci_core_get_dmabuf_phys(struct vfio_pci_core_device *vdev,
				  unsigned int region_index,
				  const struct vfio_region_dma_range *dma_ranges,
				  size_t nr_ranges, phys_addr_t *phys)
{
	struct pci_dev *pdev = vdev->pdev;
	resource_size_t start, len;
	u64 end;
	size_t i;

	if (region_index > VFIO_PCI_BAR5_REGION_INDEX)
		return -EINVAL;
	start = pci_resource_start(pdev, region_index);
	len = bar_extent(vdev, region_index);
	if (!len || !(pci_resource_flags(pdev, region_index) & IORESOURCE_MEM))
		return -EINVAL;

	for (i = 0; i < nr_ranges; i++) {
		if (check_add_overflow(start, dma_ranges[i].offset, &end) ||
		    check_add_overflow(end, dma_ranges[i].length, &end))
			return -EOVERFLOW;
		if (end - start > len)
			return -EINVAL;
		phys[i] = start + dma_ranges[i].offset;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(vfio_pci_core_get_dmabuf_phys);

/* Does [@phys, @phys + @len) lie in what a dma-buf may cover of BAR @bar? */
static bool in_bar(struct vfio_pci_core_device *vdev, u32 bar,
		   phys_addr_t phys, u64 len)
{
	resource_size_t start = pci_resource_start(vdev->pdev, bar);
	resource_size_t size = bar_extent(vdev, bar);

	return phys >= start && phys - start < size && len <= size - (phys - start);
}

/*
 * The one slice that covers a BAR smaller than a page, {0, BAR size} as
 * QEMU asks for every mmap-able BAR, stands for the page that BAR owns.
 */
static void page_of_subpage_bar(struct vfio_pci_core_device *vdev, u32 bar,
				struct vfio_region_dma_range *ranges, u32 nr)
{
	if (nr == 1 && bar <= VFIO_PCI_BAR5_REGION_INDEX && !ranges[0].offset &&
	    ranges[0].length == pci_resource_len(vdev->pdev, bar) &&
	    bar_extent(vdev, bar) == PAGE_SIZE)
		ranges[0].length = PAGE_SIZE;
}

/* Build the dma-buf's private data from the user's slices. */
static struct vfio_pci_dma_buf *
new_dma_buf(struct vfio_pci_core_device *vdev, u32 bar,
	    const struct vfio_region_dma_range *ranges, u32 nr)
{
	struct vfio_pci_dma_buf *priv;
	phys_addr_t *phys;
	int ret;
	u32 i;

	/* Up to 1.5 MiB that lives as long as the file: the user's memcg's. */
	phys = kvcalloc(nr, sizeof(*phys), GFP_KERNEL);
	priv = kvzalloc(struct_size(priv, ranges, nr), GFP_KERNEL_ACCOUNT);
	ret = -ENOMEM;
	if (!phys || !priv)
		goto err;
	ret = vdev->pci_ops->get_dmabuf_phys(vdev, bar, ranges, nr, phys);
	if (ret)
		goto err;
	/* The slices are mapped and mmapped as they are: hold the op to them. */
	ret = -EINVAL;
	for (i = 0; i < nr; i++)
		if (WARN_ON_ONCE(!in_bar(vdev, bar, phys[i], ranges[i].length)))
			goto err;
	/*
	 * Claim the BAR as read, write and mmap of its region do: a BAR that
	 * another owner holds is not the user's to hand to peers (-EBUSY).
	 * The claim lasts until the device is closed, after every dma-buf of
	 * it has been revoked for good.
	 */
	ret = vfio_pci_core_setup_barmap(vdev, bar);
	if (ret)
		goto err;

	priv->nr_ranges = nr;
	for (i = 0; i < nr; i++) {
		priv->ranges[i].offset = ranges[i].offset;
		priv->ranges[i].length = ranges[i].length;
		priv->ranges[i].phys = phys[i];
	}
	kvfree(phys);
	priv->bar = bar;
	priv->pdev = pci_dev_get(vdev->pdev);
	INIT_LIST_HEAD(&priv->dmabufs_elm);
	init_waitqueue_head(&priv->unmapped);
	return priv;

err:
	kvfree(priv);
	kvfree(phys);
	return ERR_PTR(ret);
}

/**
 * vfio_pci_core_feature_dma_buf - VFIO_DEVICE_FEATURE_DMA_BUF
 * @device: the vfio-pci device
 * @flags: the feature flags of the ioctl
 * @uarg: the user's struct vfio_device_feature_dma_buf
 * @argsz: size of @uarg, with its ranges
 *
 * Return: a new dma-buf file descriptor, or an errno as documented for
 * VFIO_DEVICE_FEATURE_DMA_BUF in include/uapi/linux/vfio.h; -EOPNOTSUPP,
 * also to PROBE, when the device's driver does not describe its regions
 * for dma-bufs.
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

	if (!vdev->pci_ops || !vdev->pci_ops->get_dmabuf_phys)
		return -EOPNOTSUPP;

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
	if (get.nr_ranges > VFIO_DEVICE_FEATURE_DMA_BUF_MAX_RANGES)
		return -E2BIG;
	if (argsz < struct_size(&get, dma_ranges, get.nr_ranges))
		return -EINVAL;
	if ((get.open_flags & ~open_ok) || (get.open_flags & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;

	ranges = vmemdup_array_user(&arg->dma_ranges, get.nr_ranges,
				    sizeof(*ranges));
	if (IS_ERR(ranges))
		return PTR_ERR(ranges);
	page_of_subpage_bar(vdev, get.region_index, ranges, get.nr_ranges);
	ret = check_lengths(ranges, get.nr_ranges, &size);
	priv = ret ? ERR_PTR(ret) :
		     new_dma_buf(vdev, get.region_index, ranges, get.nr_ranges);
	kvfree(ranges);
	if (IS_ERR(priv))
		return PTR_ERR(priv);

	exp_info.ops = &vfio_pci_dma_buf_ops;
	exp_info.size = size;
	exp_info.flags = get.open_flags;
	exp_info.priv = priv;
	priv->dmabuf = dma_buf_export(&exp_info);
	if (IS_ERR(priv->dmabuf)) {
		ret = PTR_ERR(priv->dmabuf);
		pci_dev_put(priv->pdev);
		kvfree(priv);
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
	mutex_lock(&vdev->dmabufs.lock);
	dma_resv_lock(priv->dmabuf->resv, NULL);
	priv->revoked = vdev->pm_runtime_engaged ||
			!__vfio_pci_memory_enabled(vdev) ||
			vdev->dmabufs.withheld || vdev->dmabufs.resets;
	dma_resv_unlock(priv->dmabuf->resv);
	list_add_tail(&priv->dmabufs_elm, &vdev->dmabufs.list);
	mutex_unlock(&vdev->dmabufs.lock);
	up_write(&vdev->memory_lock);

	ret = dma_buf_fd(priv->dmabuf, get.open_flags);
	if (ret < 0)
		dma_buf_put(priv->dmabuf);
	return ret;
}

/*
 * Flip @priv's access and tell its importers.  On revoke, remember the
 * fences its reservation holds: DMA queued before move_notify may still
 * target the BAR, whereas fences added later cannot (no mapping is left
 * to queue DMA on), so the wait is for this snapshot only and nobody can
 * prolong it by adding fences.  Without memory for the snapshot the wait
 * is for every fence of the reservation.
 */
static void set_revoked(struct vfio_pci_dma_buf *priv, bool revoked)
{
	struct dma_resv *resv = priv->dmabuf->resv;

	dma_resv_lock(resv, NULL);
	if (priv->revoked == revoked) {
		dma_resv_unlock(resv);
		return;
	}
	priv->revoked = revoked;
	priv->flips++;
	if (!revoked) {
		dma_buf_restore_mappings(priv->dmabuf);
		dma_resv_unlock(resv);
		return;
	}
	dma_buf_move_notify(priv->dmabuf);
	dma_fence_put(priv->revoke_fences);
	priv->all_fences = dma_resv_get_singleton(resv, DMA_RESV_USAGE_BOOKKEEP,
						  &priv->revoke_fences) != 0;
	if (priv->all_fences)
		priv->revoke_fences = NULL;
	priv->unsettled = atomic_read(&priv->nr_mapped) || priv->all_fences ||
			  (priv->revoke_fences &&
			   !dma_fence_is_signaled(priv->revoke_fences));
	dma_resv_unlock(resv);
	unmap_mapping_range(priv->dmabuf->file->f_mapping, 0, 0, true);
}

/* Nothing left to wait for: forget the revoke's fences. */
static void settle(struct vfio_pci_dma_buf *priv)
{
	dma_fence_put(priv->revoke_fences);
	priv->revoke_fences = NULL;
	priv->all_fences = false;
	priv->unsettled = false;
}

/*
 * Name the importers of @priv that still hold a mapping, or say that its
 * fences have not signalled.  A warning, not a WARN: the user may control
 * the importer (a long GPU job), and must not panic a panic_on_warn host.
 */
static void report_stuck(struct vfio_pci_dma_buf *priv, const char *after,
			 unsigned int ms)
{
	struct dma_buf_attachment *attach;
	u32 named = 0;

	dma_resv_lock(priv->dmabuf->resv, NULL);
	list_for_each_entry(attach, &priv->dmabuf->attachments, node) {
		struct vfio_pci_dma_buf_attachment *va = attach->priv;

		if (!va->nr_mapped)
			continue;
		named += va->nr_mapped;
		dev_warn_ratelimited(&priv->pdev->dev,
				     "dma-buf importer %s %s holds BAR %u %u ms after %s; waiting\n",
				     dev_driver_string(attach->dev),
				     dev_name(attach->dev), priv->bar, ms, after);
	}
	dma_resv_unlock(priv->dmabuf->resv);
	if (atomic_read(&priv->nr_mapped) > named)
		dev_warn_ratelimited(&priv->pdev->dev,
				     "dma-buf of BAR %u: an importer detached without unmapping, %u ms after %s; waiting\n",
				     priv->bar, ms, after);
	else if (!named)
		dev_warn_ratelimited(&priv->pdev->dev,
				     "dma-buf of BAR %u: fences unsignalled %u ms after %s; waiting\n",
				     priv->bar, ms, after);
}

/*
 * Wait, without a bound, until @priv's importers have given every mapping
 * back and @fences (or, with @all_fences, every fence of the reservation)
 * have signalled, naming the importers in the log every
 * VFIO_DMA_BUF_REPORT_MS; or until @priv's access flips again after
 * @flips.  Takes no lock but the reservation's, to report.
 *
 * Return: 0, or -EINTR when @killable and a fatal signal came first.
 */
static int wait_released(struct vfio_pci_dma_buf *priv,
			 struct dma_fence *fences, bool all_fences, u32 flips,
			 bool killable, const char *after)
{
	const long slice = HZ / 10;	/* how soon a fatal signal is seen */
	unsigned long start = jiffies;
	unsigned long report = start + msecs_to_jiffies(VFIO_DMA_BUF_REPORT_MS);

	while (READ_ONCE(priv->flips) == flips) {
		/* Not killable: idle, off the load average and hung-task checks */
		if ((killable ?
		     wait_event_timeout(priv->unmapped,
					!atomic_read(&priv->nr_mapped), slice) :
		     wait_event_idle_timeout(priv->unmapped,
					     !atomic_read(&priv->nr_mapped),
					     slice)) &&
		    (all_fences ?
		     dma_resv_wait_timeout(priv->dmabuf->resv,
					   DMA_RESV_USAGE_BOOKKEEP, false,
					   slice) > 0 :
		     !fences || dma_fence_wait_timeout(fences, false, slice) > 0))
			return 0;
		if (killable && fatal_signal_pending(current))
			return -EINTR;
		if (time_after(jiffies, report)) {
			report_stuck(priv, after, jiffies_to_msecs(jiffies - start));
			report = jiffies + msecs_to_jiffies(VFIO_DMA_BUF_REPORT_MS);
		}
	}
	return 0;
}

/*
 * Revoke or restore every live dma-buf of @vdev.  A dma-buf being
 * released (no file reference left) has no importers or CPU mappings to
 * act on.
 */
static void set_all_revoked(struct vfio_pci_core_device *vdev, bool revoked)
{
	struct vfio_pci_dma_buf *priv;

	lockdep_assert_held(&vdev->dmabufs.lock);
	list_for_each_entry(priv, &vdev->dmabufs.list, dmabufs_elm) {
		if (!get_file_active(&priv->dmabuf->file))
			continue;
		set_revoked(priv, revoked);
		dma_buf_put(priv->dmabuf);
	}
}

/*
 * Wait for every revoked dma-buf of @vdev to settle.  Each wait drops the
 * dma-bufs' lock, so that exports, releases and the revokes of others go
 * on meanwhile, and the walk starts over after it; only dma-bufs that had
 * a mapping or a pending fence at their revoke are waited for.
 *
 * Return: 0, or -EINTR when @killable and a fatal signal came first.
 */
static int wait_all_settled(struct vfio_pci_core_device *vdev, bool killable,
			    const char *after)
{
	struct vfio_pci_dma_buf *priv;
	int ret = 0;

	mutex_lock(&vdev->dmabufs.lock);
again:
	list_for_each_entry(priv, &vdev->dmabufs.list, dmabufs_elm) {
		struct dma_fence *fences;
		bool all_fences;
		u32 flips;

		if (!priv->unsettled || !priv->revoked ||
		    !get_file_active(&priv->dmabuf->file))
			continue;
		fences = dma_fence_get(priv->revoke_fences);
		all_fences = priv->all_fences;
		flips = priv->flips;
		mutex_unlock(&vdev->dmabufs.lock);

		ret = wait_released(priv, fences, all_fences, flips, killable,
				    after);
		dma_fence_put(fences);

		mutex_lock(&vdev->dmabufs.lock);
		if (!ret && priv->flips == flips)
			settle(priv);
		dma_buf_put(priv->dmabuf);
		if (ret)
			break;
		goto again;
	}
	mutex_unlock(&vdev->dmabufs.lock);
	return ret;
}

/*
 * Only an open device has dma-bufs to act on, and its vconfig to read:
 * a hot reset also zaps and restores the devices of its set that nobody
 * opened.  open_count is stable where memory_lock is taken: callers hold
 * the dev_set lock or an open file of the device, or are a runtime resume
 * that found the wake eventfd of an open device.
 */
static bool is_open(struct vfio_pci_core_device *vdev)
{
	return READ_ONCE(vdev->vdev.open_count);
}

/*
 * Is a dma-buf of @vdev live (not being released)?  One exists only while
 * the device is open and past vfio_pci_core_enable(), whose own reset
 * reaches reset_done before the virtual config space is set up.
 */
static bool any_live(struct vfio_pci_core_device *vdev)
{
	struct vfio_pci_dma_buf *priv;

	list_for_each_entry(priv, &vdev->dmabufs.list, dmabufs_elm)
		if (file_count(priv->dmabuf->file))
			return true;
	return false;
}

/*
 * Give access back where the user has it: the device open, memory enabled,
 * full power, no error report pending, no reset under way.
 */
static void restore_all(struct vfio_pci_core_device *vdev)
{
	lockdep_assert_held(&vdev->memory_lock);
	lockdep_assert_held(&vdev->dmabufs.lock);
	if (!vdev->dmabufs.withheld && !vdev->dmabufs.resets &&
	    !vdev->dmabufs.draining && any_live(vdev) &&
	    !vdev->pm_runtime_engaged && __vfio_pci_memory_enabled(vdev))
		set_all_revoked(vdev, false);
}

/**
 * vfio_pci_dma_buf_revoke - take BAR access away from every importer
 * @vdev: the device, with memory_lock held for writing
 *
 * Called wherever the user's own BAR mappings are zapped.  When it
 * returns, every importer has been told through move_notify and CPU
 * mappings of the dma-bufs are zapped; vfio_pci_dma_buf_wait() waits for
 * the importers to let go.  A hot reset revokes every device of its set
 * before it waits for any.
 */
void vfio_pci_dma_buf_revoke(struct vfio_pci_core_device *vdev)
{
	lockdep_assert_held_write(&vdev->memory_lock);
	if (!is_open(vdev))
		return;
	mutex_lock(&vdev->dmabufs.lock);
	set_all_revoked(vdev, true);
	mutex_unlock(&vdev->dmabufs.lock);
}

/**
 * vfio_pci_dma_buf_wait - wait until no importer can reach the BARs
 * @vdev: the device, with memory_lock held for writing
 *
 * Waits, without a bound, until the importers of every dma-buf revoked
 * (now, or by a revoke whose wait was killed) have given their mappings
 * back and the fences they had queued have signalled.  Importers still
 * busy are named in the log every VFIO_DMA_BUF_REPORT_MS.  For a revoke
 * the user asked for, before the device stops decoding: the caller fails
 * its operation on -EINTR.
 *
 * Return: 0, or -EINTR on a fatal signal; the dma-bufs then stay revoked.
 */
int vfio_pci_dma_buf_wait(struct vfio_pci_core_device *vdev)
{
	lockdep_assert_held_write(&vdev->memory_lock);
	return wait_all_settled(vdev, true, "revoke");
}

/**
 * vfio_pci_dma_buf_restore - give BAR access back if the BARs are usable
 * @vdev: the device, with memory_lock held for writing
 *
 * Called where memory decode or power may have come back, by the user's
 * hand: this also ends an error report's revoke.  Importers can map again,
 * and the dma-buf core maps IOMMU domains again itself, unless a reset
 * from outside vfio is still under way.
 */
void vfio_pci_dma_buf_restore(struct vfio_pci_core_device *vdev)
{
	lockdep_assert_held_write(&vdev->memory_lock);
	if (!is_open(vdev) || vdev->pm_runtime_engaged ||
	    !__vfio_pci_memory_enabled(vdev))
		return;
	mutex_lock(&vdev->dmabufs.lock);
	vdev->dmabufs.withheld = false;
	restore_all(vdev);
	mutex_unlock(&vdev->dmabufs.lock);
}

/**
 * vfio_pci_core_reset_prepare - revoke for a reset of the device
 * @pdev: the device, its device lock held
 *
 * The &pci_error_handlers.reset_prepare of vfio-pci: every reset through
 * pci_reset_function() and friends (sysfs reset, a bus reset of a bridge
 * above, vfio's own resets, which have revoked already) revokes, and
 * returns once no importer can reach the BARs, however long that takes.
 * Variant drivers that offer dma-bufs (&vfio_pci_device_ops.get_dmabuf_phys)
 * with error handlers of their own call this and vfio_pci_core_reset_done()
 * from theirs.
 */
void vfio_pci_core_reset_prepare(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *vdev = dev_get_drvdata(&pdev->dev);

	mutex_lock(&vdev->dmabufs.lock);
	vdev->dmabufs.resets++;
	set_all_revoked(vdev, true);
	mutex_unlock(&vdev->dmabufs.lock);
	wait_all_settled(vdev, false, "reset");
}
EXPORT_SYMBOL_GPL(vfio_pci_core_reset_prepare);

/**
 * vfio_pci_core_reset_done - give access back after a reset
 * @pdev: the device, its device lock held
 *
 * The &pci_error_handlers.reset_done of vfio-pci: the PCI core has
 * restored the device's config space, decode included.  Access comes back
 * where the user has it, read from vfio's virtual config space; while a
 * vfio operation holds memory_lock, which includes vfio's own resets, it
 * is left to that operation, and it stays off for a device that is gone.
 */
void vfio_pci_core_reset_done(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *vdev = dev_get_drvdata(&pdev->dev);
	bool locked = !pci_dev_is_disconnected(pdev) &&
		      down_read_trylock(&vdev->memory_lock);

	mutex_lock(&vdev->dmabufs.lock);
	if (!WARN_ON_ONCE(!vdev->dmabufs.resets))
		vdev->dmabufs.resets--;
	if (locked)
		restore_all(vdev);
	mutex_unlock(&vdev->dmabufs.lock);
	if (locked)
		up_read(&vdev->memory_lock);
}
EXPORT_SYMBOL_GPL(vfio_pci_core_reset_done);

/**
 * vfio_pci_dma_buf_error - revoke when the link has failed
 * @vdev: the device, its device lock held
 *
 * Called from AER and DPC error recovery for a frozen or failed link,
 * which recovery may reset behind vfio's back, leaving the BARs
 * undecoded: access is withheld until the user next gives it back
 * (memory enabled, a reset).  No wait: peers' requests no longer reach
 * the device, and recovery of every device below the port must not wait
 * for one user's importers.
 */
void vfio_pci_dma_buf_error(struct vfio_pci_core_device *vdev)
{
	mutex_lock(&vdev->dmabufs.lock);
	if (!list_empty(&vdev->dmabufs.list)) {
		vdev->dmabufs.withheld = true;
		set_all_revoked(vdev, true);
	}
	mutex_unlock(&vdev->dmabufs.lock);
}

/*
 * Cut the dma-bufs of a closed device loose once nothing reaches its BARs:
 * they stay valid files, revoked for good, and no longer hold the
 * device's registration.
 */
static void detach_all(struct vfio_pci_core_device *vdev)
{
	struct vfio_pci_dma_buf *priv, *tmp;
	LIST_HEAD(dead);

	mutex_lock(&vdev->dmabufs.lock);
	list_for_each_entry_safe(priv, tmp, &vdev->dmabufs.list, dmabufs_elm) {
		if (!get_file_active(&priv->dmabuf->file))
			continue;
		dma_resv_lock(priv->dmabuf->resv, NULL);
		priv->vdev = NULL;
		dma_resv_unlock(priv->dmabuf->resv);
		settle(priv);
		list_move_tail(&priv->dmabufs_elm, &dead);
	}
	vdev->dmabufs.withheld = false;
	vdev->dmabufs.draining = false;
	mutex_unlock(&vdev->dmabufs.lock);

	list_for_each_entry_safe(priv, tmp, &dead, dmabufs_elm) {
		list_del_init(&priv->dmabufs_elm);
		vfio_device_put_registration(&vdev->vdev);
		dma_buf_put(priv->dmabuf);
	}
}

/*
 * Wait for the importers of a closed device, then finish closing it; not
 * while a reset from outside vfio, which waited for the same importers,
 * saves and restores the device's state.
 */
static void drain(struct work_struct *work)
{
	struct vfio_pci_core_device *vdev =
		container_of(work, struct vfio_pci_core_device, dmabufs.drain);
	unsigned int resets;

	for (;;) {
		wait_all_settled(vdev, false, "close");
		mutex_lock(&vdev->vdev.dev_set->lock);
		mutex_lock(&vdev->dmabufs.lock);
		resets = vdev->dmabufs.resets;
		mutex_unlock(&vdev->dmabufs.lock);
		if (!resets)
			break;
		mutex_unlock(&vdev->vdev.dev_set->lock);
		msleep(100);
	}
	detach_all(vdev);
	vfio_pci_core_finish_disable(vdev);
	vfio_pci_core_put_vf_token(vdev);
	mutex_unlock(&vdev->vdev.dev_set->lock);
}

/**
 * vfio_pci_dma_buf_cleanup - revoke for good when the device is closed
 * @vdev: the device, its device set's lock held
 *
 * Revokes every dma-buf and returns without waiting.  If an importer
 * still holds a mapping, or a fence of the revoke is pending, the device
 * drains (&vfio_pci_dma_bufs.draining): vfio_pci_core_disable() leaves its
 * BARs claimed and decoding, the device unreset and in D0, with bus
 * mastering and INTx off; opening it and a hot reset of its set fail with
 * -EBUSY, and the set's bus reset when a sibling closes is skipped, until
 * every importer has let go, however long that takes (importers still
 * busy are named in the log every VFIO_DMA_BUF_REPORT_MS); unbinding it
 * waits.  Then a work item finishes disabling it.  The wait holds no
 * lock, so the set's other devices open, close and reset by function
 * meanwhile, and a close from a kernel thread's fput does not stall.  The
 * dma-bufs stay valid files but can never be mapped again.
 */
void vfio_pci_dma_buf_cleanup(struct vfio_pci_core_device *vdev)
{
	struct vfio_pci_dma_buf *priv;
	bool draining = false;

	lockdep_assert_held(&vdev->vdev.dev_set->lock);
	mutex_lock(&vdev->dmabufs.lock);
	set_all_revoked(vdev, true);
	list_for_each_entry(priv, &vdev->dmabufs.list, dmabufs_elm)
		draining |= priv->unsettled && file_count(priv->dmabuf->file);
	vdev->dmabufs.draining = draining;
	mutex_unlock(&vdev->dmabufs.lock);

	if (draining)
		queue_work(system_long_wq, &vdev->dmabufs.drain);
	else
		detach_all(vdev);
}

/**
 * vfio_pci_dma_buf_init - set up the drain of a device's dma-bufs
 * @vdev: the device, being initialized
 */
void vfio_pci_dma_buf_init(struct vfio_pci_core_device *vdev)
{
	INIT_WORK(&vdev->dmabufs.drain, drain);
}

/**
 * vfio_pci_dma_buf_unregister - wait for a drain to finish
 * @vdev: the device, unregistered
 *
 * The drain gives back the registration before it returns; the device
 * and the module must outlive it.
 */
void vfio_pci_dma_buf_unregister(struct vfio_pci_core_device *vdev)
{
	flush_work(&vdev->dmabufs.drain);
}
