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
#include <kunit/visibility.h>
#include <linux/overflow.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>

#include "dma-buf-ranges-core.h"

/*
 * Every list is allocated in one of these.  For a list the core builds
 * from an sg_table, it keeps the table where neither importer nor
 * exporter can change it; whose list it is follows from the exporter's
 * ops (see is_exporters()), never from the list itself.
 */
struct dma_buf_ranges_core {
	struct sg_table *sgt;	/* the exporter's table it was built from */
	struct dma_buf_ranges pub;	/* last: ends in the flexible array */
};

static struct dma_buf_ranges_core *to_core(const struct dma_buf_ranges *ranges)
{
	return container_of((struct dma_buf_ranges *)ranges,
			    struct dma_buf_ranges_core, pub);
}

/*
 * A fresh mapping is the exporter's own list when it has range ops; a
 * cached one when it has no sg_table ops (else the core built it from the
 * cached sg_table).
 */
static bool is_exporters(struct dma_buf_attachment *attach, bool cached)
{
	const struct dma_buf_ops *ops = attach->dmabuf->ops;

	return cached ? !ops->map_dma_buf : !!ops->map_dma_ranges;
}

/*
 * The sg_table given to a legacy importer of a range exporter.  It has a
 * DMA side only: orig_nents is 0, so the CPU iterators (sync, page walks,
 * DMABUF_DEBUG's mangling) see no entries.
 */
struct dma_buf_ranges_sgt {
	struct sg_table sgt;
	unsigned int nents;		/* for sg_free_table() */
	/* Unmapped with the table; NULL when it is the attachment's cache */
	struct dma_buf_ranges *ranges;
};

/**
 * DOC: DMA range lists
 *
 * &dma_buf_ops.map_dma_ranges returns the DMA side of a mapping and nothing
 * else: an array of &struct dma_buf_range, each a DMA address for the
 * importing device and a 64-bit length, page aligned.  It suits exporters
 * of memory without struct pages, such as PCI BARs, and importers that
 * only program DMA addresses into their hardware, which is all an importer
 * may do with a dma-buf mapping anyway.
 *
 * Exporters implement the sg_table ops, the range ops, or both.  The core
 * converts where the two sides differ:
 *
 * - dma_buf_map_attachment() on an exporter with only range ops returns an
 *   sg_table built from the ranges with a DMA side only (no pages,
 *   &sg_table.orig_nents 0), split so that no entry is longer than
 *   dma_get_max_seg_size() or crosses dma_get_seg_boundary() of the
 *   importing device.  Only importers that set
 *   &dma_buf_attach_ops.allow_peer2peer get one; others walk the pages of
 *   what they import and are refused with -EOPNOTSUPP.
 * - dma_buf_map_ranges() on an exporter with only sg_table ops maps the
 *   sg_table and returns its DMA side, with DMA-contiguous entries merged.
 *
 * Only the sg_table conversion costs time in proportion to the size of the
 * buffer; a range exporter's own work is proportional to its ranges.
 *
 * Locking, pinning, caching and move_notify follow
 * dma_buf_map_attachment(), and share its code: the importer holds the
 * reservation lock, the exporter's range ops are called with it held,
 * dynamic exporters are pinned for each mapping while
 * CONFIG_DMABUF_MOVE_NOTIFY is off, static importers wait for the kernel
 * fences, and an attachment keeps one cached mapping from attach to detach
 * when importer and exporter differ in dynamic-ness, or from its first map
 * when the exporter sets &dma_buf_ops.cache_sgt_mapping.  A cached mapping
 * serves both kinds of importer: an exporter with only range ops caches
 * its ranges, and an sg_table is built from them only for an importer that
 * asks for one.
 */

/**
 * dma_buf_ranges_alloc - allocate a range list
 * @nr: number of ranges, at least 1
 * @gfp: allocation flags
 *
 * For exporters, in &dma_buf_ops.map_dma_ranges: the caller fills in
 * &dma_buf_ranges.ranges and may set &dma_buf_ranges.exporter_priv.  Every
 * list the core is given must come from here.
 *
 * Return: the list with @nr zeroed ranges, or NULL if @nr is 0 or memory
 * is short.  The list takes 16 bytes per range (12 where dma_addr_t is
 * 32-bit) plus a fixed header.
 */
struct dma_buf_ranges *dma_buf_ranges_alloc(unsigned int nr, gfp_t gfp)
{
	struct dma_buf_ranges_core *core;

	if (!nr)
		return NULL;
	core = kvzalloc(struct_size(core, pub.ranges, nr), gfp);
	if (!core)
		return NULL;
	core->pub.nr = nr;
	return &core->pub;
}
EXPORT_SYMBOL_NS_GPL(dma_buf_ranges_alloc, DMA_BUF);

/**
 * dma_buf_ranges_free - free a range list from dma_buf_ranges_alloc()
 * @ranges: the list; may be NULL
 */
void dma_buf_ranges_free(struct dma_buf_ranges *ranges)
{
	if (ranges)
		kvfree(to_core(ranges));
}
EXPORT_SYMBOL_NS_GPL(dma_buf_ranges_free, DMA_BUF);

/*
 * An exporter provides whole pairs of ops, of at least one kind, and
 * caches only sg_tables.
 */
bool dma_buf_ops_valid_map(const struct dma_buf_ops *ops)
{
	bool sgt = ops->map_dma_buf, ranges = ops->map_dma_ranges;

	if (sgt != !!ops->unmap_dma_buf || ranges != !!ops->unmap_dma_ranges)
		return false;
	if (ops->cache_sgt_mapping && !sgt)
		return false;
	return sgt || ranges;
}
EXPORT_SYMBOL_IF_KUNIT(dma_buf_ops_valid_map);

/*
 * Every list, the exporter's or one built from an sg_table, is checked
 * the same way: page-aligned spans that do not wrap the DMA address space
 * and add up to the size of the buffer.
 */
static int check_ranges(struct dma_buf *dmabuf,
			const struct dma_buf_ranges *ranges)
{
	u64 total = 0;
	unsigned int i;

	if (!ranges->nr)
		return -EINVAL;
	for (i = 0; i < ranges->nr; i++) {
		const struct dma_buf_range *r = &ranges->ranges[i];

		if (!r->len || !PAGE_ALIGNED(r->addr) || !PAGE_ALIGNED(r->len))
			return -EINVAL;
		if (r->len - 1 > (dma_addr_t)~0 - r->addr)
			return -EINVAL;
		if (check_add_overflow(total, r->len, &total))
			return -EINVAL;
	}
	return total == dmabuf->size ? 0 : -EINVAL;
}

/* The exporter's range op, held to its contract. */
static struct dma_buf_ranges *
exporter_map_ranges(struct dma_buf_attachment *attach,
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
	ret = check_ranges(dmabuf, ranges);
	if (ret) {
		dmabuf->ops->unmap_dma_ranges(attach, ranges, dir);
		return ERR_PTR(ret);
	}
	return ranges;
}

/* Does @r run on into @next?  Never across the top of the address space. */
static bool continues(const struct dma_buf_range *r, dma_addr_t next)
{
	u64 end;

	return !check_add_overflow((u64)r->addr, r->len, &end) && end == next;
}

/*
 * The DMA side of @sgt with DMA-contiguous entries merged, written to @out
 * if it is not NULL: the counting and the filling pass are this one walk.
 */
static unsigned int merge_sgt(struct sg_table *sgt, struct dma_buf_range *out)
{
	struct dma_buf_range cur = {};
	struct scatterlist *sg;
	unsigned int nr = 0;
	int i;

	for_each_sgtable_dma_sg(sgt, sg, i) {
		if (nr && continues(&cur, sg_dma_address(sg))) {
			cur.len += sg_dma_len(sg);
			continue;
		}
		if (nr && out)
			out[nr - 1] = cur;
		cur.addr = sg_dma_address(sg);
		cur.len = sg_dma_len(sg);
		nr++;
	}
	if (nr && out)
		out[nr - 1] = cur;
	return nr;
}

/* A list for range importers of an sg_table mapping: released with it. */
static struct dma_buf_ranges *ranges_from_sgt(struct dma_buf *dmabuf,
					      struct sg_table *sgt)
{
	struct dma_buf_ranges *ranges;
	unsigned int nr = merge_sgt(sgt, NULL);
	int ret;

	if (!nr)
		return ERR_PTR(-EINVAL);
	ranges = dma_buf_ranges_alloc(nr, GFP_KERNEL);
	if (!ranges)
		return ERR_PTR(-ENOMEM);
	merge_sgt(sgt, ranges->ranges);
	to_core(ranges)->sgt = sgt;
	ret = check_ranges(dmabuf, ranges);
	if (ret) {
		dma_buf_ranges_free(ranges);
		return ERR_PTR(ret);
	}
	return ranges;
}

/* Release a list from map_ranges(). */
static void unmap_ranges(struct dma_buf_attachment *attach,
			 struct dma_buf_ranges *ranges,
			 enum dma_data_direction dir)
{
	const struct dma_buf_ops *ops = attach->dmabuf->ops;
	struct sg_table *sgt;

	if (is_exporters(attach, false)) {
		ops->unmap_dma_ranges(attach, ranges, dir);
		return;
	}
	sgt = to_core(ranges)->sgt;
	dma_buf_ranges_free(ranges);
	ops->unmap_dma_buf(attach, sgt, dir);
}

/*
 * A fresh mapping for a range importer: the exporter's range op, or its
 * sg_table op through ranges_from_sgt().  A static importer waits for the
 * kernel fences, as for an sg_table.
 */
static struct dma_buf_ranges *map_ranges(struct dma_buf_attachment *attach,
					 enum dma_data_direction dir)
{
	const struct dma_buf_ops *ops = attach->dmabuf->ops;
	struct dma_buf_ranges *ranges;
	struct sg_table *sgt;
	int ret;

	if (ops->map_dma_ranges) {
		ranges = exporter_map_ranges(attach, dir);
		if (IS_ERR(ranges))
			return ranges;
	} else {
		sgt = ops->map_dma_buf(attach, dir);
		if (!sgt)
			return ERR_PTR(-ENOMEM);
		if (IS_ERR(sgt))
			return ERR_CAST(sgt);
		ranges = ranges_from_sgt(attach->dmabuf, sgt);
		if (IS_ERR(ranges)) {
			ops->unmap_dma_buf(attach, sgt, dir);
			return ranges;
		}
	}
	ret = dma_buf_wait_on_map(attach);
	if (ret) {
		unmap_ranges(attach, ranges, dir);
		return ERR_PTR(ret);
	}
	return ranges;
}

/**
 * dma_buf_ranges_cache - map ranges to keep from attach to detach
 * @attach: an attachment of a dma-buf with only range ops, whose importer
 *	differs from the exporter in dynamic-ness; reservation lock held
 *
 * An sg_table importer gets one built from these ranges when it maps.
 *
 * Return: 0, or the error of the map.
 */
int dma_buf_ranges_cache(struct dma_buf_attachment *attach)
{
	struct dma_buf_ranges *ranges;

	ranges = map_ranges(attach, DMA_BIDIRECTIONAL);
	if (IS_ERR(ranges))
		return PTR_ERR(ranges);
	attach->ranges = ranges;
	attach->dir = DMA_BIDIRECTIONAL;
	return 0;
}

/**
 * dma_buf_ranges_uncache - release the ranges cached for an attachment
 * @attach: the attachment being detached, with the reservation lock held
 *
 * Called after the cached sg_table, if any, is released: a list built from
 * that sg_table is only freed here, an exporter's list is unmapped.
 */
void dma_buf_ranges_uncache(struct dma_buf_attachment *attach)
{
	struct dma_buf_ranges *ranges = (struct dma_buf_ranges *)attach->ranges;

	if (!ranges)
		return;
	attach->ranges = NULL;
	if (is_exporters(attach, true))
		attach->dmabuf->ops->unmap_dma_ranges(attach, ranges,
						      attach->dir);
	else
		dma_buf_ranges_free(ranges);
}

/* The cached mapping as ranges, built from a cached sg_table on first use. */
static const struct dma_buf_ranges *
cached_ranges(struct dma_buf_attachment *attach, enum dma_data_direction dir)
{
	const struct dma_buf_ranges *ranges;

	if (attach->dir != dir && attach->dir != DMA_BIDIRECTIONAL)
		return ERR_PTR(-EBUSY);
	if (!attach->ranges) {
		ranges = ranges_from_sgt(attach->dmabuf, attach->sgt);
		if (IS_ERR(ranges))
			return ranges;
		attach->ranges = ranges;
	}
	return attach->ranges;
}

/**
 * dma_buf_map_ranges - map a dma-buf for an attachment as DMA ranges
 * @attach: the attachment
 * @dir: direction of the DMA transfers
 *
 * The range-list counterpart of dma_buf_map_attachment(), with the same
 * rules: the caller holds the reservation lock of @attach->dmabuf; dynamic
 * importers must respect the fences of the reservation object and drop the
 * mapping when &dma_buf_attach_ops.move_notify is called; an attachment
 * with a cached mapping (see "DMA range lists" above) gets that mapping.
 * It works with every exporter: one without &dma_buf_ops.map_dma_ranges is
 * mapped through its sg_table, whose DMA-contiguous entries are merged.
 *
 * Return: the ranges, read-only, covering the whole dma-buf in order, to
 * be released with dma_buf_unmap_ranges(); or an ERR_PTR: the exporter's
 * error unchanged (-ENODEV when it has revoked access), -EBUSY when a
 * cached mapping has another direction, -EINVAL when the exporter's list
 * breaks the rules of &struct dma_buf_range or does not cover the buffer,
 * -ENOMEM, or -ERESTARTSYS when a signal interrupts a static importer's
 * wait for the fences.
 */
const struct dma_buf_ranges *
dma_buf_map_ranges(struct dma_buf_attachment *attach,
		   enum dma_data_direction dir)
{
	struct dma_buf_ranges *ranges;
	struct sg_table *sgt;
	int ret;

	might_sleep();
	if (WARN_ON(!attach || !attach->dmabuf))
		return ERR_PTR(-EINVAL);
	dma_resv_assert_held(attach->dmabuf->resv);

	if (attach->sgt || attach->ranges)
		return cached_ranges(attach, dir);

	/* The sg_table to cache is the one dma_buf_map_attachment() caches. */
	if (attach->dmabuf->ops->cache_sgt_mapping) {
		sgt = dma_buf_map_attachment(attach, dir);
		if (IS_ERR(sgt))
			return ERR_CAST(sgt);
		return cached_ranges(attach, dir);
	}

	if (dma_buf_pin_on_map(attach)) {
		ret = attach->dmabuf->ops->pin(attach);
		if (ret)
			return ERR_PTR(ret);
	}
	ranges = map_ranges(attach, dir);
	if (IS_ERR(ranges) && dma_buf_pin_on_map(attach))
		attach->dmabuf->ops->unpin(attach);
	return ranges;
}
EXPORT_SYMBOL_NS_GPL(dma_buf_map_ranges, DMA_BUF);

/**
 * dma_buf_unmap_ranges - release a mapping from dma_buf_map_ranges()
 * @attach: the attachment
 * @ranges: the mapping
 * @dir: the direction it was mapped with
 *
 * The caller holds the reservation lock of @attach->dmabuf.  A cached
 * mapping stays until dma_buf_detach().
 */
void dma_buf_unmap_ranges(struct dma_buf_attachment *attach,
			  const struct dma_buf_ranges *ranges,
			  enum dma_data_direction dir)
{
	might_sleep();
	if (WARN_ON(!attach || !attach->dmabuf || IS_ERR_OR_NULL(ranges)))
		return;
	dma_resv_assert_held(attach->dmabuf->resv);

	if (ranges == attach->ranges)
		return;
	unmap_ranges(attach, (struct dma_buf_ranges *)ranges, dir);
	if (dma_buf_pin_on_map(attach))
		attach->dmabuf->ops->unpin(attach);
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
const struct dma_buf_ranges *
dma_buf_map_ranges_unlocked(struct dma_buf_attachment *attach,
			    enum dma_data_direction dir)
{
	const struct dma_buf_ranges *ranges;

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
				   const struct dma_buf_ranges *ranges,
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
 * crossing the @boundary mask, at most @len.  The mask is a DMA address
 * mask even where unsigned long is narrower than dma_addr_t.
 */
static u64 seg_len(dma_addr_t addr, u64 len, u64 max, u64 boundary)
{
	u64 seg = min(len, max);

	if (boundary != U64_MAX)
		seg = min(seg, boundary - (addr & boundary) + 1);
	return seg;
}

/*
 * The entries of an sg_table of @ranges for @attach's device, written from
 * @sg on if it is not NULL: the counting and the filling pass are this one
 * walk.  Every entry is within the device's maximum segment size (rounded
 * down to whole pages) and segment boundary.
 */
static u64 split_ranges(struct dma_buf_attachment *attach,
			const struct dma_buf_ranges *ranges,
			struct scatterlist *sg)
{
	u64 boundary = dma_get_seg_boundary(attach->dev);
	u64 max = dma_get_max_seg_size(attach->dev);
	u64 nents = 0;
	unsigned int i;

	if (max >= PAGE_SIZE)
		max = round_down(max, PAGE_SIZE);
	for (i = 0; i < ranges->nr; i++) {
		dma_addr_t addr = ranges->ranges[i].addr;
		u64 left = ranges->ranges[i].len, seg;

		for (; left; addr += seg, left -= seg, nents++) {
			seg = seg_len(addr, left, max, boundary);
			if (sg) {
				sg_dma_address(sg) = addr;
				sg_dma_len(sg) = seg;
				sg = sg_next(sg);
			}
		}
	}
	return nents;
}

/*
 * An sg_table for a legacy importer of @ranges, with a DMA side only.
 * @owned ranges are unmapped with the table; otherwise they are the
 * attachment's cache.
 */
static struct sg_table *sgt_from_ranges(struct dma_buf_attachment *attach,
					const struct dma_buf_ranges *ranges,
					bool owned)
{
	struct dma_buf_ranges_sgt *shim;
	u64 nents = split_ranges(attach, ranges, NULL);
	int ret;

	if (nents > INT_MAX)
		return ERR_PTR(-E2BIG);
	shim = kzalloc(sizeof(*shim), GFP_KERNEL);
	if (!shim)
		return ERR_PTR(-ENOMEM);
	/* Tens of MiB for a large BAR at a small segment size: may fail. */
	ret = sg_alloc_table(&shim->sgt, nents, GFP_KERNEL | __GFP_NOWARN);
	if (ret) {
		kfree(shim);
		return ERR_PTR(ret);
	}
	split_ranges(attach, ranges, shim->sgt.sgl);
	shim->nents = nents;
	shim->sgt.orig_nents = 0;
	if (owned)
		shim->ranges = (struct dma_buf_ranges *)ranges;
	return &shim->sgt;
}

/**
 * dma_buf_exporter_map_sgt - the exporter's mapping as an sg_table
 * @attach: the attachment
 * @dir: direction of the DMA transfers
 *
 * Calls &dma_buf_ops.map_dma_buf, or builds the sg_table from
 * &dma_buf_ops.map_dma_ranges for exporters that only have ranges: for
 * importers that take page-less tables only.
 *
 * Return: the sg_table, NULL, or an ERR_PTR, as &dma_buf_ops.map_dma_buf;
 * -EOPNOTSUPP for an importer without &dma_buf_attach_ops.allow_peer2peer.
 */
struct sg_table *dma_buf_exporter_map_sgt(struct dma_buf_attachment *attach,
					  enum dma_data_direction dir)
{
	struct dma_buf_ranges *ranges;
	struct sg_table *sgt;

	if (attach->dmabuf->ops->map_dma_buf)
		return attach->dmabuf->ops->map_dma_buf(attach, dir);
	if (!attach->peer2peer)
		return ERR_PTR(-EOPNOTSUPP);

	ranges = exporter_map_ranges(attach, dir);
	if (IS_ERR(ranges))
		return ERR_CAST(ranges);
	sgt = sgt_from_ranges(attach, ranges, true);
	if (IS_ERR(sgt))
		attach->dmabuf->ops->unmap_dma_ranges(attach, ranges, dir);
	return sgt;
}

/**
 * dma_buf_ranges_cached_sgt - an sg_table of an attachment's cached ranges
 * @attach: the attachment, with cached ranges and the reservation lock held
 *
 * Return: the table, which dma_buf_exporter_unmap_sgt() frees without
 * unmapping the ranges, or an ERR_PTR as dma_buf_exporter_map_sgt().
 */
struct sg_table *dma_buf_ranges_cached_sgt(struct dma_buf_attachment *attach)
{
	if (!attach->peer2peer)
		return ERR_PTR(-EOPNOTSUPP);
	return sgt_from_ranges(attach, attach->ranges, false);
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
	if (shim->ranges)
		attach->dmabuf->ops->unmap_dma_ranges(attach, shim->ranges,
						      dir);
	shim->sgt.orig_nents = shim->nents;
	sg_free_table(&shim->sgt);
	kfree(shim);
}
