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
 * ops (a list is the exporter's when it has range ops), never from the
 * list itself.
 */
struct dma_buf_ranges_core {
	struct sg_table *sgt;	/* the exporter's table it was built from */
	struct dma_buf_ranges pub;	/* last: ends in the flexible array */
};

static struct dma_buf_ranges_core *to_core(struct dma_buf_ranges *ranges)
{
	return container_of(ranges, struct dma_buf_ranges_core, pub);
}

/*
 * The sg_table given to an sg_table importer of an exporter with only
 * range ops.  It has a DMA side only: orig_nents is 0, so the CPU
 * iterators (sync, page walks, DMABUF_DEBUG's mangling) see no entries.
 */
struct dma_buf_ranges_sgt {
	struct sg_table sgt;
	unsigned int nents;		/* for sg_free_table() */
	struct dma_buf_ranges *ranges;	/* unmapped with the table */
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
 * Only the sg_table conversion (below) costs time in proportion to the
 * size of the buffer; a range exporter's own work is proportional to its
 * ranges.
 *
 * Locking, pinning, caching and move_notify follow
 * dma_buf_map_attachment(), and share its code: the importer holds the
 * reservation lock, the exporter's range ops are called with it held,
 * dynamic exporters are pinned for each mapping while
 * CONFIG_DMABUF_MOVE_NOTIFY is off, and an attachment of a static
 * exporter keeps one mapping of its type from attach to detach.  Range
 * importers have attach ops, so they are dynamic: they watch the fences
 * themselves, and an exporter's &dma_buf_ops.cache_sgt_mapping (static
 * exporters only) changes nothing for them.
 *
 * A buffer whose size is not a multiple of PAGE_SIZE is mapped in whole
 * pages: its ranges add up to PAGE_ALIGN(size), the last one ending on the
 * page boundary after the buffer's last byte.  The bytes of that page past
 * &dma_buf.size are not the buffer's; importers do not reach them.
 */

/**
 * DOC: Mapping types
 *
 * Each attachment maps one kind of mapping, &dma_buf_attachment.map_type,
 * chosen once by dma_buf_dynamic_attach() from the kinds the importer
 * takes (&dma_buf_attach_ops.map_types; sg_tables only for an importer
 * without attach ops or without the field) and those the exporter's ops
 * give.  The importer maps and unmaps with the functions of that kind
 * only: dma_buf_map_attachment() for %DMA_BUF_MAP_SGT,
 * dma_buf_map_ranges() for %DMA_BUF_MAP_RANGES, dma_buf_iommu_map() for
 * %DMA_BUF_MAP_IOMMU.  Those of another kind warn once and fail with
 * -EINVAL.  %DMA_BUF_MAP_IOMMU is taken alone, from exporters with
 * &dma_buf_ops.get_phys_ranges only, and never converted (see
 * "IOMMU-domain mappings").
 *
 * The exporter's own kind is chosen where the importer takes it; the core
 * converts only where the importer takes none of the kinds the exporter
 * gives:
 *
 * =====================  ================  =================  ===========
 * importer takes         exporter has      exporter has       exporter
 *                        sg_table ops      range ops only     has both
 * =====================  ================  =================  ===========
 * sg_tables (6.12)       sg_table          page-less          sg_table
 *                                          sg_table (1)
 * ranges                 ranges merged     ranges             ranges
 *                        from sg_table (2)
 * sg_tables and ranges   sg_table          ranges             ranges
 * =====================  ================  =================  ===========
 *
 * (1) An sg_table with a DMA side only (no pages, &sg_table.orig_nents 0),
 *     split so that no entry is longer than dma_get_max_seg_size() of the
 *     importing device (rounded down to whole pages) or crosses its
 *     dma_get_seg_boundary(): importers program entries into hardware
 *     with those limits.  Only importers that set
 *     &dma_buf_attach_ops.allow_peer2peer take one, and only if the
 *     exporter's attach leaves &dma_buf_attachment.peer2peer set; others
 *     walk the pages of what they import, and their attach fails with
 *     -EOPNOTSUPP.  A table of more than INT_MAX entries is refused with
 *     -E2BIG, counted without walking it.
 * (2) The exporter's sg_table mapped, and its DMA side returned with
 *     DMA-contiguous entries merged, cut at the buffer's last page (6.12's
 *     importers used no more of a longer table than the buffer) and the
 *     last range rounded up to it.
 *
 * Whatever the kind, where importer and exporter differ in dynamic-ness
 * the one mapping is made at attach (a dynamic exporter pinned for it)
 * and kept until detach; &dma_buf_ops.cache_sgt_mapping keeps an sg_table
 * attachment's first mapping; otherwise a dynamic importer of a dynamic
 * exporter gets a mapping per map, pinned for its life when
 * CONFIG_DMABUF_MOVE_NOTIFY is off.
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
 * is short.  The list takes sizeof(struct dma_buf_range) per range (16
 * bytes on 64-bit; on 32-bit 12 or 16, as the ABI aligns u64) plus a
 * fixed header.
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
 * and add up to the size of the buffer in whole pages.
 */
static int check_ranges(struct dma_buf *dmabuf,
			const struct dma_buf_ranges *ranges)
{
	u64 total = 0;
	unsigned int i;

	if (!ranges->nr)
		return -EINVAL;
	for (i = 0; i < ranges->nr; i++)
		if (dma_buf_add_span(ranges->ranges[i].addr,
				     ranges->ranges[i].len, (dma_addr_t)~0,
				     &total))
			return -EINVAL;
	return total == PAGE_ALIGN((u64)dmabuf->size) ? 0 : -EINVAL;
}

/**
 * dma_buf_add_span - check one range an exporter gave and add it up
 * @addr: where it starts
 * @len: its length
 * @top: the highest address of its kind (DMA or physical)
 * @total: the lengths so far, to add @len to
 *
 * The rule of both kinds of range lists: page aligned, not empty, not
 * past @top, and a sum that does not overflow.
 *
 * Return: 0, or -EINVAL.
 */
int dma_buf_add_span(u64 addr, u64 len, u64 top, u64 *total)
{
	if (!len || !PAGE_ALIGNED(addr) || !PAGE_ALIGNED(len) ||
	    addr > top || len - 1 > top - addr)
		return -EINVAL;
	return check_add_overflow(*total, len, total) ? -EINVAL : 0;
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

/*
 * A list for range importers of an sg_table mapping: released with it.
 * It ends at the buffer's last page: a longer table is cut there, and a
 * last entry that ends short of it (a buffer of no page multiple) is
 * rounded up.
 */
static struct dma_buf_ranges *ranges_from_sgt(struct dma_buf *dmabuf,
					      struct sg_table *sgt)
{
	u64 left = PAGE_ALIGN((u64)dmabuf->size);
	unsigned int nr = merge_sgt(sgt, NULL);
	struct dma_buf_ranges *ranges;
	unsigned int i;
	int ret;

	if (!nr)
		return ERR_PTR(-EINVAL);
	ranges = dma_buf_ranges_alloc(nr, GFP_KERNEL);
	if (!ranges)
		return ERR_PTR(-ENOMEM);
	merge_sgt(sgt, ranges->ranges);
	for (i = 0; i < nr; i++) {
		struct dma_buf_range *r = &ranges->ranges[i];

		if (r->len >= left) {
			r->len = left;
			ranges->nr = i + 1;
			break;
		}
		left -= r->len;
	}
	ranges->ranges[ranges->nr - 1].len =
		PAGE_ALIGN(ranges->ranges[ranges->nr - 1].len);
	to_core(ranges)->sgt = sgt;
	ret = check_ranges(dmabuf, ranges);
	if (ret) {
		pr_warn_ratelimited("dma-buf: %s: sg_table not usable as ranges: %d\n",
				    dmabuf->exp_name, ret);
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

	if (ops->map_dma_ranges) {
		ops->unmap_dma_ranges(attach, ranges, dir);
		return;
	}
	sgt = to_core(ranges)->sgt;
	dma_buf_ranges_free(ranges);
	ops->unmap_dma_buf(attach, sgt, dir);
}

/*
 * A fresh mapping for a range importer: the exporter's range op, or its
 * sg_table op through ranges_from_sgt().  Range importers have attach ops,
 * so they are dynamic and watch the fences themselves.
 */
static struct dma_buf_ranges *map_ranges(struct dma_buf_attachment *attach,
					 enum dma_data_direction dir)
{
	const struct dma_buf_ops *ops = attach->dmabuf->ops;
	struct dma_buf_ranges *ranges;
	struct sg_table *sgt;

	if (ops->map_dma_ranges)
		return exporter_map_ranges(attach, dir);

	sgt = ops->map_dma_buf(attach, dir);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	if (IS_ERR(sgt))
		return ERR_CAST(sgt);
	ranges = ranges_from_sgt(attach->dmabuf, sgt);
	if (IS_ERR(ranges))
		ops->unmap_dma_buf(attach, sgt, dir);
	return ranges;
}

/* The kinds of mapping an importer takes: sg_tables unless it says. */
static u32 importer_map_types(const struct dma_buf_attach_ops *importer_ops)
{
	if (!importer_ops || !importer_ops->map_types)
		return BIT(DMA_BUF_MAP_SGT);
	return importer_ops->map_types;
}

/**
 * dma_buf_choose_map_type - choose the kind of mapping of an attachment
 * @attach: the attachment being made, with its importer ops set
 *
 * Sets &dma_buf_attachment.map_type as "Mapping types" says.
 *
 * Return: 0; -EOPNOTSUPP when the importer takes no kind the exporter
 * gives or the core converts to for it; -EINVAL (with a warning) for a
 * kind that is not an sg_table or a range list.
 */
int dma_buf_choose_map_type(struct dma_buf_attachment *attach)
{
	const struct dma_buf_ops *ops = attach->dmabuf->ops;
	u32 want = importer_map_types(attach->importer_ops);
	bool sgt = want & BIT(DMA_BUF_MAP_SGT);
	bool ranges = want & BIT(DMA_BUF_MAP_RANGES);

	if (WARN_ON_ONCE(want & ~(BIT(DMA_BUF_MAP_SGT) |
				  BIT(DMA_BUF_MAP_RANGES))))
		return -EINVAL;

	/* The exporter's own kind, so that nothing is converted. */
	if (ranges && ops->map_dma_ranges)
		attach->map_type = DMA_BUF_MAP_RANGES;
	else if (sgt && ops->map_dma_buf)
		attach->map_type = DMA_BUF_MAP_SGT;
	else if (ranges)
		attach->map_type = DMA_BUF_MAP_RANGES;
	else if (attach->peer2peer)
		attach->map_type = DMA_BUF_MAP_SGT;
	else
		return -EOPNOTSUPP;
	return 0;
}

/**
 * dma_buf_map_type_allowed - does the exporter's attach leave the type?
 * @attach: the attachment, after the exporter's &dma_buf_ops.attach
 *
 * An exporter may clear &dma_buf_attachment.peer2peer in its attach
 * (amdgpu does for devices it cannot reach): a page-less sg_table is then
 * no use to the importer, which is refused now rather than at each map.
 *
 * Return: 0 or -EOPNOTSUPP.
 */
int dma_buf_map_type_allowed(struct dma_buf_attachment *attach)
{
	if (attach->map_type == DMA_BUF_MAP_SGT &&
	    !attach->dmabuf->ops->map_dma_buf && !attach->peer2peer)
		return -EOPNOTSUPP;
	return 0;
}

/**
 * dma_buf_ranges_cache - map ranges to keep from attach to detach
 * @attach: a range attachment whose importer differs from the exporter in
 *	dynamic-ness, with the reservation lock held
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
 */
void dma_buf_ranges_uncache(struct dma_buf_attachment *attach)
{
	struct dma_buf_ranges *ranges = attach->ranges;

	if (!ranges)
		return;
	attach->ranges = NULL;
	unmap_ranges(attach, ranges, attach->dir);
}

/* A range importer calls this; anything else is a bug of the importer. */
static bool is_range_attach(struct dma_buf_attachment *attach)
{
	return !WARN_ON_ONCE(attach->map_type != DMA_BUF_MAP_RANGES);
}

/**
 * dma_buf_map_ranges - map a dma-buf for an attachment as DMA ranges
 * @attach: an attachment whose &dma_buf_attachment.map_type is
 *	%DMA_BUF_MAP_RANGES
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
 * error unchanged (-ENODEV when it has revoked access), -EINVAL for an
 * attachment of another type or when the exporter's list breaks the rules
 * of &struct dma_buf_range or does not cover the buffer, or -ENOMEM.
 */
const struct dma_buf_ranges *
dma_buf_map_ranges(struct dma_buf_attachment *attach,
		   enum dma_data_direction dir)
{
	const struct dma_buf_ops *ops;
	struct dma_buf_ranges *ranges;
	int ret;

	might_sleep();
	if (WARN_ON(!attach || !attach->dmabuf) || !is_range_attach(attach))
		return ERR_PTR(-EINVAL);
	dma_resv_assert_held(attach->dmabuf->resv);
	ops = attach->dmabuf->ops;

	/* Mapped at attach, for both directions. */
	if (attach->ranges)
		return attach->ranges;

	if (dma_buf_pin_on_map(attach)) {
		ret = ops->pin(attach);
		if (ret)
			return ERR_PTR(ret);
	}
	ranges = map_ranges(attach, dir);
	if (IS_ERR(ranges)) {
		if (dma_buf_pin_on_map(attach))
			ops->unpin(attach);
		return ranges;
	}
	attach->map_count++;
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
	if (WARN_ON(!attach || !attach->dmabuf || IS_ERR_OR_NULL(ranges)) ||
	    !is_range_attach(attach))
		return;
	dma_resv_assert_held(attach->dmabuf->resv);

	if (ranges == attach->ranges)
		return;
	if (WARN_ON_ONCE(!attach->map_count))
		return;
	/* The list was ours to give read-only; it goes back to its owner. */
	unmap_ranges(attach, (struct dma_buf_ranges *)ranges, dir);
	attach->map_count--;
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

/* ceil(@len / @max) without overflow, for @max >= 1. */
static u64 pieces(u64 len, u64 max)
{
	u64 rem;
	u64 n = div64_u64_rem(len, max, &rem);

	return n + !!rem;
}

/*
 * Number of sg_table entries for [@addr, @addr + @len): each at most @max
 * bytes and none crossing a multiple of the @boundary mask + 1 (a power of
 * two), as seg_len() cuts them, computed without walking them.  Saturates
 * at U64_MAX.
 */
static u64 count_segs(dma_addr_t addr, u64 len, u64 max, u64 boundary)
{
	u64 chunk, first, whole, last, n;

	if (boundary == U64_MAX)
		return pieces(len, max);
	chunk = boundary + 1;
	first = min(len, chunk - (addr & boundary));
	whole = (len - first) >> ilog2(chunk);
	last = (len - first) & boundary;
	if (check_mul_overflow(whole, pieces(chunk, max), &n) ||
	    check_add_overflow(n, pieces(first, max), &n) ||
	    check_add_overflow(n, pieces(last, max), &n))
		return U64_MAX;
	return n;
}

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

/* The importing device's maximum entry, in whole pages where it can be. */
static u64 max_seg(struct device *dev)
{
	u64 max = dma_get_max_seg_size(dev);

	return max >= PAGE_SIZE ? round_down(max, PAGE_SIZE) : max;
}

/* The number of entries of an sg_table of @ranges for @attach's device. */
static u64 sgt_nents(struct dma_buf_attachment *attach,
		     const struct dma_buf_ranges *ranges)
{
	u64 boundary = dma_get_seg_boundary(attach->dev);
	u64 max = max_seg(attach->dev);
	u64 nents = 0;
	unsigned int i;

	/* dma_set_seg_boundary() takes 2^n - 1; count_segs() relies on it. */
	if (WARN_ON_ONCE(boundary & (boundary + 1)))
		return U64_MAX;
	for (i = 0; i < ranges->nr; i++)
		if (check_add_overflow(nents,
				       count_segs(ranges->ranges[i].addr,
						  ranges->ranges[i].len, max,
						  boundary), &nents))
			return U64_MAX;
	return nents;
}

/*
 * Fill the entries of an sg_table of @ranges for @attach's device, from
 * @sg on, each within the device's maximum segment size and boundary.
 */
static void split_ranges(struct dma_buf_attachment *attach,
			 const struct dma_buf_ranges *ranges,
			 struct scatterlist *sg)
{
	u64 boundary = dma_get_seg_boundary(attach->dev);
	u64 max = max_seg(attach->dev);
	unsigned int i;

	for (i = 0; i < ranges->nr; i++) {
		dma_addr_t addr = ranges->ranges[i].addr;
		u64 left = ranges->ranges[i].len, seg;

		for (; left && sg; addr += seg, left -= seg) {
			seg = seg_len(addr, left, max, boundary);
			sg_dma_address(sg) = addr;
			sg_dma_len(sg) = seg;
			sg = sg_next(sg);
		}
	}
}

/*
 * An sg_table with a DMA side only for an sg_table importer of @ranges,
 * which are unmapped with the table.
 */
static struct sg_table *sgt_from_ranges(struct dma_buf_attachment *attach,
					struct dma_buf_ranges *ranges)
{
	struct dma_buf_ranges_sgt *shim;
	u64 nents = sgt_nents(attach, ranges);
	int ret;

	if (nents > INT_MAX)
		return ERR_PTR(-E2BIG);
	shim = kzalloc(sizeof(*shim), GFP_KERNEL);
	if (!shim)
		return ERR_PTR(-ENOMEM);
	/*
	 * Tens of MiB for a large BAR at a small segment size, chosen by the
	 * user: fail rather than call the OOM killer.
	 */
	ret = sg_alloc_table(&shim->sgt, nents,
			     GFP_KERNEL | __GFP_RETRY_MAYFAIL | __GFP_NOWARN);
	if (ret) {
		kfree(shim);
		return ERR_PTR(ret);
	}
	split_ranges(attach, ranges, shim->sgt.sgl);
	shim->nents = nents;
	shim->sgt.orig_nents = 0;
	shim->ranges = ranges;
	return &shim->sgt;
}

/**
 * dma_buf_exporter_map_sgt - the exporter's mapping as an sg_table
 * @attach: an sg_table attachment
 * @dir: direction of the DMA transfers
 *
 * Calls &dma_buf_ops.map_dma_buf, or builds the sg_table from
 * &dma_buf_ops.map_dma_ranges for exporters that only have ranges (the
 * attachment's importer takes page-less tables: "Mapping types").
 *
 * Return: the sg_table, NULL, or an ERR_PTR, as &dma_buf_ops.map_dma_buf;
 * -E2BIG for a table of more than INT_MAX entries.
 */
struct sg_table *dma_buf_exporter_map_sgt(struct dma_buf_attachment *attach,
					  enum dma_data_direction dir)
{
	struct dma_buf_ranges *ranges;
	struct sg_table *sgt;

	if (attach->dmabuf->ops->map_dma_buf)
		return attach->dmabuf->ops->map_dma_buf(attach, dir);

	/* The exporter's attach may have cleared it after the choice. */
	if (!attach->peer2peer)
		return ERR_PTR(-EOPNOTSUPP);
	ranges = exporter_map_ranges(attach, dir);
	if (IS_ERR(ranges))
		return ERR_CAST(ranges);
	sgt = sgt_from_ranges(attach, ranges);
	if (IS_ERR(sgt))
		attach->dmabuf->ops->unmap_dma_ranges(attach, ranges, dir);
	return sgt;
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
	shim->sgt.orig_nents = shim->nents;
	sg_free_table(&shim->sgt);
	kfree(shim);
}
