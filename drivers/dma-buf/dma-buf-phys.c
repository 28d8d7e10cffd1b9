// SPDX-License-Identifier: GPL-2.0
/*
 * Physical range lists for dma-buf importers that own IOMMU page tables.
 */
#include <linux/dma-buf.h>
#include <linux/dma-buf-phys.h>
#include <linux/dma-resv.h>
#include <linux/overflow.h>
#include <linux/slab.h>

#include "dma-buf-phys-core.h"

/**
 * DOC: Physical range lists
 *
 * A device importer maps a dma-buf for itself and gets DMA addresses
 * (&dma_buf_ops.map_dma_ranges).  An importer that owns IOMMU page tables,
 * iommufd, maps the memory for whichever devices are attached to those
 * tables, now or later, so no DMA address for one device is any use to it:
 * it needs the memory's CPU physical address, and must know that it is
 * device memory, to map it uncached.  &dma_buf_ops.map_phys_ranges gives
 * exactly that, as a list of page-aligned (physical address, 64-bit length)
 * spans of MMIO, each a &struct dma_buf_phys_range.
 *
 * Physical addresses bypass the DMA API, and with it every check that a
 * device may reach the memory, so the kind is restricted:
 *
 * - The importer asks for it at attach time, as its only mapping type
 *   (%DMA_BUF_MAP_PHYS in &dma_buf_attach_ops.map_types), and must also
 *   set allow_peer2peer and allow_revoke: the importer must drop its IOMMU
 *   mappings when the exporter revokes access.
 * - The exporter decides at attach whether any device that may use the
 *   importer's page tables can reach the memory.  It does not know those
 *   devices, so it must answer for all of them: a PCI exporter accepts
 *   only when every path through the root complex forwards peer-to-peer
 *   traffic (pci_p2pdma_host_bridge_forwards()).
 * - The core refuses such importers at attach with -EOPNOTSUPP when the
 *   exporter has no &dma_buf_ops.map_phys_ranges: memory with struct pages
 *   is imported through its pages, not its physical address.
 * - The importer API is exported in the DMA_BUF_PHYS namespace.  That is a
 *   marker for review, not access control: the exporter's attach check is
 *   the gate.
 *
 * The memory is device memory at a fixed address: it never moves, it is
 * only revoked and restored, so a physical mapping needs no pin.  The
 * exporter calls dma_buf_move_notify() after it has revoked access, and
 * again after it has restored it; the importer unmaps in the callback and
 * may map again from it, the reservation lock being held, so that access
 * comes back without anyone asking.  Hence &dma_buf_ops.map_phys_ranges
 * may be called from within dma_buf_move_notify() and must not call it.
 * The callback can come before dma_buf_dynamic_attach() has returned.
 *
 * The core cannot tell device memory from RAM; exporters give only device
 * memory, which importers map uncached.
 */

/**
 * dma_buf_phys_ranges_alloc - allocate a physical range list
 * @nr: number of ranges, at least 1
 * @gfp: allocation flags
 *
 * For exporters, in &dma_buf_ops.map_phys_ranges.
 *
 * Return: the list with @nr zeroed ranges, or NULL if @nr is 0 or memory
 * is short.
 */
struct dma_buf_phys_ranges *dma_buf_phys_ranges_alloc(unsigned int nr,
						      gfp_t gfp)
{
	struct dma_buf_phys_ranges *ranges;

	if (!nr)
		return NULL;
	ranges = kvzalloc(struct_size(ranges, ranges, nr), gfp);
	if (ranges)
		ranges->nr = nr;
	return ranges;
}
EXPORT_SYMBOL_NS_GPL(dma_buf_phys_ranges_alloc, DMA_BUF);

/**
 * dma_buf_phys_ranges_free - free a list from dma_buf_phys_ranges_alloc()
 * @ranges: the list; may be NULL
 */
void dma_buf_phys_ranges_free(struct dma_buf_phys_ranges *ranges)
{
	kvfree(ranges);
}
EXPORT_SYMBOL_NS_GPL(dma_buf_phys_ranges_free, DMA_BUF);

/*
 * The ops come in pairs, and only dynamic exporters may have them: the core
 * maps a static exporter's buffer at attach, for the importer's device,
 * which an importer of physical ranges does not have.
 */
bool dma_buf_phys_ops_valid(const struct dma_buf_ops *ops)
{
	if (!ops->map_phys_ranges != !ops->unmap_phys_ranges)
		return false;
	return !ops->map_phys_ranges || ops->pin;
}

/* Does the importer take physical ranges (and then nothing else)? */
bool dma_buf_phys_importer(const struct dma_buf_attach_ops *importer_ops)
{
	return importer_ops &&
	       (importer_ops->map_types & BIT(DMA_BUF_MAP_PHYS));
}

/* At attach: may the importer take @attach's dma-buf by physical address? */
int dma_buf_phys_attach_check(struct dma_buf_attachment *attach)
{
	const struct dma_buf_attach_ops *importer_ops = attach->importer_ops;

	if (WARN_ON(importer_ops->map_types != BIT(DMA_BUF_MAP_PHYS) ||
		    !importer_ops->allow_peer2peer ||
		    !importer_ops->allow_revoke))
		return -EINVAL;
	if (!attach->dmabuf->ops->map_phys_ranges)
		return -EOPNOTSUPP;
	attach->map_type = DMA_BUF_MAP_PHYS;
	return 0;
}

/* A physical range importer calls this; anything else is a bug. */
static bool is_phys_attach(struct dma_buf_attachment *attach)
{
	return !WARN_ON_ONCE(attach->map_type != DMA_BUF_MAP_PHYS);
}

/* Page-aligned spans of the physical address space, the buffer's size. */
static int check_phys_ranges(struct dma_buf *dmabuf,
			     const struct dma_buf_phys_ranges *ranges)
{
	u64 total = 0;
	unsigned int i;

	if (!ranges->nr)
		return -EINVAL;
	for (i = 0; i < ranges->nr; i++) {
		const struct dma_buf_phys_range *r = &ranges->ranges[i];

		if (!r->len || !PAGE_ALIGNED(r->addr) || !PAGE_ALIGNED(r->len))
			return -EINVAL;
		if (r->len - 1 > (phys_addr_t)~0 - r->addr)
			return -EINVAL;
		if (check_add_overflow(total, r->len, &total))
			return -EINVAL;
	}
	return total == PAGE_ALIGN((u64)dmabuf->size) ? 0 : -EINVAL;
}

/**
 * dma_buf_map_phys_ranges - get a dma-buf's memory by physical address
 * @attach: an attachment of type %DMA_BUF_MAP_PHYS
 *
 * For importers that program IOMMU page tables themselves; see "Physical
 * range lists".  The caller holds the reservation lock, also from its
 * move_notify callback.  The list is the importer's until it gives it back
 * with dma_buf_unmap_phys_ranges(), which it must do when the exporter
 * revokes access (move_notify) and before it detaches.
 *
 * Return: the list, read-only, or an ERR_PTR: -ENODEV while the exporter
 * has revoked access, the exporter's other errors unchanged, -EINVAL for
 * an attachment of another type or an exporter's list
 * that breaks the rules of &struct dma_buf_phys_range or does not cover
 * the buffer, -ENOMEM.
 */
const struct dma_buf_phys_ranges *
dma_buf_map_phys_ranges(struct dma_buf_attachment *attach)
{
	struct dma_buf *dmabuf;
	struct dma_buf_phys_ranges *ranges;
	int ret;

	might_sleep();
	if (WARN_ON(!attach || !attach->dmabuf) || !is_phys_attach(attach))
		return ERR_PTR(-EINVAL);
	dmabuf = attach->dmabuf;
	dma_resv_assert_held(dmabuf->resv);

	ranges = dmabuf->ops->map_phys_ranges(attach);
	if (!ranges)
		return ERR_PTR(-ENOMEM);
	if (IS_ERR(ranges))
		return ranges;
	ret = check_phys_ranges(dmabuf, ranges);
	if (ret) {
		dmabuf->ops->unmap_phys_ranges(attach, ranges);
		return ERR_PTR(ret);
	}
	attach->map_count++;
	return ranges;
}
EXPORT_SYMBOL_NS_GPL(dma_buf_map_phys_ranges, DMA_BUF_PHYS);

/**
 * dma_buf_unmap_phys_ranges - give back a list from dma_buf_map_phys_ranges()
 * @attach: the attachment
 * @ranges: the list
 *
 * The caller holds the reservation lock and has removed every IOMMU
 * mapping it made of the list, with the IOTLB flushed: once this returns,
 * the exporter may take the memory away.
 */
void dma_buf_unmap_phys_ranges(struct dma_buf_attachment *attach,
			       const struct dma_buf_phys_ranges *ranges)
{
	might_sleep();
	if (WARN_ON(!attach || !attach->dmabuf || IS_ERR_OR_NULL(ranges)) ||
	    !is_phys_attach(attach))
		return;
	dma_resv_assert_held(attach->dmabuf->resv);
	if (WARN_ON_ONCE(!attach->map_count))
		return;
	attach->map_count--;

	/* The exporter frees what it allocated; importers only read it. */
	attach->dmabuf->ops->unmap_phys_ranges(attach,
				(struct dma_buf_phys_ranges *)ranges);
}
EXPORT_SYMBOL_NS_GPL(dma_buf_unmap_phys_ranges, DMA_BUF_PHYS);
