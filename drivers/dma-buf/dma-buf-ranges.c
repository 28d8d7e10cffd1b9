// SPDX-License-Identifier: GPL-2.0
/*
 * DMA range lists for dma-buf: the importer API, the helpers exporters
 * share, and the conversions that let range exporters serve sg_table
 * importers and sg_table exporters serve range importers.
 */
#include <linux/dma-buf.h>
#include <linux/dma-buf-ranges.h>
#include <linux/dma-mapping.h>
#include <linux/dma-resv.h>
#include <linux/overflow.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>

#include "dma-buf-ranges-core.h"

/* The sg_table given to a legacy importer, and the ranges it came from. */
struct dma_buf_ranges_sgt {
	struct sg_table sgt;
	struct dma_buf_ranges *ranges;
};

/**
 * DOC: DMA range lists
 *
 * &dma_buf_ops.map_dma_ranges returns the DMA side of a mapping and nothing
 * else: an array of &struct dma_buf_range, each a DMA address for the
 * importing device and a 64-bit length.  It suits exporters of memory
 * without struct pages, such as PCI BARs, and importers that only program
 * DMA addresses into their hardware, which is all an importer may do with
 * a dma-buf mapping anyway.
 *
 * Exporters implement either the sg_table ops, the range ops, or both.  The
 * core converts where the two sides differ:
 *
 * - dma_buf_map_attachment() on an exporter with only range ops returns a
 *   page-less sg_table built from the ranges, split so that no entry is
 *   longer than dma_get_max_seg_size() or crosses dma_get_seg_boundary()
 *   of the importing device.
 * - dma_buf_map_ranges() on an exporter with only sg_table ops maps the
 *   sg_table and returns its DMA side, with DMA-contiguous entries merged.
 *
 * Only the sg_table conversion costs time in proportion to the size of the
 * buffer; a range exporter's own work is proportional to its ranges.
 *
 * Locking, pinning and move_notify follow dma_buf_map_attachment() exactly:
 * dma_buf_map_ranges() and dma_buf_unmap_ranges() are called with the
 * reservation lock held, the exporter's range ops are called with it held,
 * and a static attachment gets the mapping the core cached at attach time.
 */

/**
 * dma_buf_ranges_alloc - allocate a range list
 * @nr: number of ranges, at least 1
 * @gfp: allocation flags
 *
 * For exporters, in &dma_buf_ops.map_dma_ranges: the caller fills in
 * &dma_buf_ranges.ranges and may set &dma_buf_ranges.exporter_priv.
 *
 * Return: the list with @nr zeroed ranges, or NULL if @nr is 0 or memory
 * is short.  The list takes 16 bytes per range plus a fixed header.
 */
struct dma_buf_ranges *dma_buf_ranges_alloc(unsigned int nr, gfp_t gfp)
{
	struct dma_buf_ranges *ranges;

	if (!nr)
		return NULL;
	ranges = kvzalloc(struct_size(ranges, ranges, nr), gfp);
	if (ranges)
		ranges->nr = nr;
	return ranges;
}
EXPORT_SYMBOL_NS_GPL(dma_buf_ranges_alloc, DMA_BUF);

/**
 * dma_buf_ranges_free - free a range list from dma_buf_ranges_alloc()
 * @ranges: the list; may be NULL
 */
void dma_buf_ranges_free(struct dma_buf_ranges *ranges)
{
	kvfree(ranges);
}
EXPORT_SYMBOL_NS_GPL(dma_buf_ranges_free, DMA_BUF);

/* An exporter must provide whole pairs of ops, of at least one kind. */
bool dma_buf_ops_valid_map(const struct dma_buf_ops *ops)
{
	bool sgt = ops->map_dma_buf, ranges = ops->map_dma_ranges;

	if (sgt != !!ops->unmap_dma_buf || ranges != !!ops->unmap_dma_ranges)
		return false;
	return sgt || ranges;
}

/* The ranges must cover the whole buffer without wrapping the DMA space. */
static int dma_buf_ranges_check(struct dma_buf *dmabuf,
				const struct dma_buf_ranges *ranges)
{
	u64 total = 0;
	unsigned int i;

	if (!ranges->nr)
		return -EINVAL;
	for (i = 0; i < ranges->nr; i++) {
		const struct dma_buf_range *r = &ranges->ranges[i];

		if (!r->len || r->len - 1 > (dma_addr_t)~0 - r->addr)
			return -EINVAL;
		if (check_add_overflow(total, r->len, &total))
			return -EINVAL;
	}
	return total == dmabuf->size ? 0 : -EINVAL;
}

/* Call the exporter's range op and hold it to its contract. */
static struct dma_buf_ranges *call_map_ranges(struct dma_buf_attachment *attach,
					      enum dma_data_direction dir)
{
	struct dma_buf *dmabuf = attach->dmabuf;
	struct dma_buf_ranges *ranges;
	int ret;

	ranges = dmabuf->ops->map_dma_ranges(attach, dir);
	if (!ranges)
		return ERR_PTR(-ENOMEM);
	if (IS_ERR(ranges))
		return ranges;
	ret = dma_buf_ranges_check(dmabuf, ranges);
	if (ret) {
		dmabuf->ops->unmap_dma_ranges(attach, ranges, dir);
		return ERR_PTR(ret);
	}
	return ranges;
}

/* DMA-contiguous sg_table entries become one range. */
static struct dma_buf_ranges *ranges_from_sgt(struct sg_table *sgt)
{
	struct dma_buf_ranges *ranges;
	struct dma_buf_range *r = NULL;
	struct scatterlist *sg;
	unsigned int nr = 0;
	dma_addr_t next = 0;
	int i;

	for_each_sgtable_dma_sg(sgt, sg, i) {
		if (!nr || sg_dma_address(sg) != next)
			nr++;
		next = sg_dma_address(sg) + sg_dma_len(sg);
	}
	ranges = dma_buf_ranges_alloc(nr, GFP_KERNEL);
	if (!ranges)
		return ERR_PTR(-ENOMEM);

	for_each_sgtable_dma_sg(sgt, sg, i) {
		if (!r || sg_dma_address(sg) != r->addr + r->len) {
			r = r ? r + 1 : ranges->ranges;
			r->addr = sg_dma_address(sg);
		}
		r->len += sg_dma_len(sg);
	}
	ranges->sgt = sgt;
	return ranges;
}

/*
 * Map for a range importer: the exporter's range op, or its sg_table op
 * through ranges_from_sgt().  Like __map_dma_buf(), a static importer waits
 * for the kernel fences before it may use the mapping.
 */
static struct dma_buf_ranges *__map_ranges(struct dma_buf_attachment *attach,
					   enum dma_data_direction dir)
{
	struct dma_buf *dmabuf = attach->dmabuf;
	struct dma_buf_ranges *ranges;
	struct sg_table *sgt;
	long ret;

	if (!dmabuf->ops->map_dma_ranges) {
		sgt = __map_dma_buf(attach, dir);
		if (!sgt)
			return ERR_PTR(-ENOMEM);
		if (IS_ERR(sgt))
			return ERR_CAST(sgt);
		ranges = ranges_from_sgt(sgt);
		if (IS_ERR(ranges))
			__unmap_dma_buf(attach, sgt, dir);
		return ranges;
	}

	ranges = call_map_ranges(attach, dir);
	if (IS_ERR(ranges) || dma_buf_attachment_is_dynamic(attach))
		return ranges;
	ret = dma_resv_wait_timeout(dmabuf->resv, DMA_RESV_USAGE_KERNEL, true,
				    MAX_SCHEDULE_TIMEOUT);
	if (ret < 0) {
		dmabuf->ops->unmap_dma_ranges(attach, ranges, dir);
		return ERR_PTR(ret);
	}
	return ranges;
}

static void __unmap_ranges(struct dma_buf_attachment *attach,
			   struct dma_buf_ranges *ranges,
			   enum dma_data_direction dir)
{
	if (ranges->sgt) {
		__unmap_dma_buf(attach, ranges->sgt, dir);
		dma_buf_ranges_free(ranges);
	} else {
		attach->dmabuf->ops->unmap_dma_ranges(attach, ranges, dir);
	}
}

/*
 * A static attachment's mapping was cached as an sg_table at attach time:
 * serve range requests from it, without mapping again.
 */
static struct dma_buf_ranges *cached_ranges(struct dma_buf_attachment *attach,
					    enum dma_data_direction dir)
{
	struct dma_buf_ranges *ranges;

	if (attach->dir != dir && attach->dir != DMA_BIDIRECTIONAL)
		return ERR_PTR(-EBUSY);
	if (attach->ranges)
		return attach->ranges;

	if (!attach->dmabuf->ops->map_dma_buf) {
		/* The cached sg_table was built from the exporter's ranges. */
		attach->ranges = container_of(attach->sgt,
					      struct dma_buf_ranges_sgt, sgt)->ranges;
		return attach->ranges;
	}
	ranges = ranges_from_sgt(attach->sgt);
	if (!IS_ERR(ranges))
		attach->ranges = ranges;
	return ranges;
}

/**
 * dma_buf_map_ranges - map a dma-buf for an attachment as DMA ranges
 * @attach: the attachment
 * @dir: direction of the DMA transfers
 *
 * The range-list counterpart of dma_buf_map_attachment(), with the same
 * rules: the caller holds the reservation lock of @attach->dmabuf; dynamic
 * importers must respect the fences of the reservation object and drop the
 * mapping when &dma_buf_attach_ops.move_notify is called; static
 * attachments get the mapping the core cached at attach time.  It works
 * with every exporter: one without &dma_buf_ops.map_dma_ranges is mapped
 * through its sg_table, whose DMA-contiguous entries are merged.
 *
 * Return: the ranges, covering the whole dma-buf in order, to be released
 * with dma_buf_unmap_ranges(); or an ERR_PTR: the exporter's error
 * unchanged (-ENODEV when it has revoked access), -EBUSY when a cached
 * mapping has another direction, -EINVAL when the exporter returned an
 * invalid list, -ENOMEM, or -EINTR.
 */
struct dma_buf_ranges *dma_buf_map_ranges(struct dma_buf_attachment *attach,
					  enum dma_data_direction dir)
{
	struct dma_buf_ranges *ranges;
	struct dma_buf *dmabuf;
	int ret;

	might_sleep();
	if (WARN_ON(!attach || !attach->dmabuf))
		return ERR_PTR(-EINVAL);
	dmabuf = attach->dmabuf;
	dma_resv_assert_held(dmabuf->resv);

	if (attach->sgt)
		return cached_ranges(attach, dir);

	if (dma_buf_is_dynamic(dmabuf) &&
	    !IS_ENABLED(CONFIG_DMABUF_MOVE_NOTIFY)) {
		ret = dmabuf->ops->pin(attach);
		if (ret)
			return ERR_PTR(ret);
	}
	ranges = __map_ranges(attach, dir);
	if (IS_ERR(ranges) && dma_buf_is_dynamic(dmabuf) &&
	    !IS_ENABLED(CONFIG_DMABUF_MOVE_NOTIFY))
		dmabuf->ops->unpin(attach);
	return ranges;
}
EXPORT_SYMBOL_NS_GPL(dma_buf_map_ranges, DMA_BUF);

/**
 * dma_buf_unmap_ranges - release a mapping from dma_buf_map_ranges()
 * @attach: the attachment
 * @ranges: the mapping
 * @dir: the direction it was mapped with
 *
 * The caller holds the reservation lock of @attach->dmabuf.  The cached
 * mapping of a static attachment stays until dma_buf_detach().
 */
void dma_buf_unmap_ranges(struct dma_buf_attachment *attach,
			  struct dma_buf_ranges *ranges,
			  enum dma_data_direction dir)
{
	might_sleep();
	if (WARN_ON(!attach || !attach->dmabuf || IS_ERR_OR_NULL(ranges)))
		return;
	dma_resv_assert_held(attach->dmabuf->resv);

	if (ranges == attach->ranges)
		return;
	__unmap_ranges(attach, ranges, dir);
	if (dma_buf_is_dynamic(attach->dmabuf) &&
	    !IS_ENABLED(CONFIG_DMABUF_MOVE_NOTIFY))
		dma_buf_unpin(attach);
}
EXPORT_SYMBOL_NS_GPL(dma_buf_unmap_ranges, DMA_BUF);

/**
 * dma_buf_map_ranges_unlocked - dma_buf_map_ranges() taking the lock itself
 * @attach: the attachment
 * @dir: direction of the DMA transfers
 *
 * For importers that do not hold the reservation lock.
 *
 * Return: as dma_buf_map_ranges().
 */
struct dma_buf_ranges *
dma_buf_map_ranges_unlocked(struct dma_buf_attachment *attach,
			    enum dma_data_direction dir)
{
	struct dma_buf_ranges *ranges;

	might_sleep();
	if (WARN_ON(!attach || !attach->dmabuf))
		return ERR_PTR(-EINVAL);

	dma_resv_lock(attach->dmabuf->resv, NULL);
	ranges = dma_buf_map_ranges(attach, dir);
	dma_resv_unlock(attach->dmabuf->resv);
	return ranges;
}
EXPORT_SYMBOL_NS_GPL(dma_buf_map_ranges_unlocked, DMA_BUF);

/**
 * dma_buf_unmap_ranges_unlocked - dma_buf_unmap_ranges() taking the lock
 * @attach: the attachment
 * @ranges: the mapping
 * @dir: the direction it was mapped with
 */
void dma_buf_unmap_ranges_unlocked(struct dma_buf_attachment *attach,
				   struct dma_buf_ranges *ranges,
				   enum dma_data_direction dir)
{
	might_sleep();
	if (WARN_ON(!attach || !attach->dmabuf))
		return;

	dma_resv_lock(attach->dmabuf->resv, NULL);
	dma_buf_unmap_ranges(attach, ranges, dir);
	dma_resv_unlock(attach->dmabuf->resv);
}
EXPORT_SYMBOL_NS_GPL(dma_buf_unmap_ranges_unlocked, DMA_BUF);

/*
 * Length of the sg_table entry that starts at @addr: at most @max, not
 * crossing the @boundary mask, at most @len.
 */
static u64 seg_len(dma_addr_t addr, u64 len, u64 max, unsigned long boundary)
{
	u64 seg = min(len, max);

	if (boundary != ULONG_MAX)
		seg = min_t(u64, seg, boundary - (addr & boundary) + 1);
	return seg;
}

/*
 * Build a page-less sg_table from a range exporter's ranges: only the DMA
 * side is set, and every entry respects the importing device's maximum
 * segment size (rounded down to whole pages) and segment boundary.
 */
static struct sg_table *sgt_from_ranges(struct dma_buf_attachment *attach,
					enum dma_data_direction dir)
{
	unsigned long boundary = dma_get_seg_boundary(attach->dev);
	u64 max = dma_get_max_seg_size(attach->dev);
	struct dma_buf_ranges_sgt *shim;
	struct dma_buf_ranges *ranges;
	struct scatterlist *sg;
	u64 nents = 0;
	unsigned int i;
	int ret;

	if (max >= PAGE_SIZE)
		max = round_down(max, PAGE_SIZE);

	ranges = call_map_ranges(attach, dir);
	if (IS_ERR(ranges))
		return ERR_CAST(ranges);

	for (i = 0; i < ranges->nr; i++) {
		dma_addr_t addr = ranges->ranges[i].addr;
		u64 left = ranges->ranges[i].len, seg;

		for (; left; addr += seg, left -= seg, nents++)
			seg = seg_len(addr, left, max, boundary);
	}
	ret = -E2BIG;
	if (nents > INT_MAX)
		goto err_unmap;

	ret = -ENOMEM;
	shim = kzalloc(sizeof(*shim), GFP_KERNEL);
	if (!shim)
		goto err_unmap;
	ret = sg_alloc_table(&shim->sgt, nents, GFP_KERNEL);
	if (ret)
		goto err_free;

	sg = shim->sgt.sgl;
	for (i = 0; i < ranges->nr; i++) {
		dma_addr_t addr = ranges->ranges[i].addr;
		u64 left = ranges->ranges[i].len, seg;

		for (; left; addr += seg, left -= seg, sg = sg_next(sg)) {
			seg = seg_len(addr, left, max, boundary);
			sg_dma_address(sg) = addr;
			sg_dma_len(sg) = seg;
		}
	}
	shim->ranges = ranges;
	return &shim->sgt;

err_free:
	kfree(shim);
err_unmap:
	attach->dmabuf->ops->unmap_dma_ranges(attach, ranges, dir);
	return ERR_PTR(ret);
}

/**
 * dma_buf_exporter_map_sgt - the exporter's mapping as an sg_table
 * @attach: the attachment
 * @dir: direction of the DMA transfers
 *
 * Calls &dma_buf_ops.map_dma_buf, or builds the sg_table from
 * &dma_buf_ops.map_dma_ranges for exporters that only have ranges.
 *
 * Return: the sg_table, NULL, or an ERR_PTR, as &dma_buf_ops.map_dma_buf.
 */
struct sg_table *dma_buf_exporter_map_sgt(struct dma_buf_attachment *attach,
					  enum dma_data_direction dir)
{
	if (attach->dmabuf->ops->map_dma_buf)
		return attach->dmabuf->ops->map_dma_buf(attach, dir);
	return sgt_from_ranges(attach, dir);
}

/**
 * dma_buf_exporter_unmap_sgt - release a dma_buf_exporter_map_sgt() table
 * @attach: the attachment
 * @sgt: the sg_table
 * @dir: the direction it was mapped with
 */
void dma_buf_exporter_unmap_sgt(struct dma_buf_attachment *attach,
				struct sg_table *sgt,
				enum dma_data_direction dir)
{
	struct dma_buf_ranges_sgt *shim;

	if (attach->dmabuf->ops->unmap_dma_buf) {
		attach->dmabuf->ops->unmap_dma_buf(attach, sgt, dir);
		return;
	}
	shim = container_of(sgt, struct dma_buf_ranges_sgt, sgt);
	attach->dmabuf->ops->unmap_dma_ranges(attach, shim->ranges, dir);
	sg_free_table(&shim->sgt);
	kfree(shim);
}

/**
 * dma_buf_ranges_detach - drop the ranges cached for a static attachment
 * @attach: the attachment being detached, with the reservation lock held
 *
 * Only a list built from the cached sg_table is the attachment's own; one
 * taken from a range exporter's mapping goes with that sg_table.
 */
void dma_buf_ranges_detach(struct dma_buf_attachment *attach)
{
	if (attach->ranges && attach->ranges->sgt)
		dma_buf_ranges_free(attach->ranges);
	attach->ranges = NULL;
}
