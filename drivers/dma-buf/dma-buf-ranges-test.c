// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for dma-buf range lists: mock exporters with range ops only,
 * sg_table ops only, or both, imported by a kunit device through the range
 * API and the legacy sg_table API.
 */
#include <kunit/device.h>
#include <kunit/test.h>
#include <kunit/test-bug.h>
#include <linux/dma-buf.h>
#include <linux/dma-buf-ranges.h>
#include <linux/dma-fence.h>
#include <linux/dma-resv.h>
#include <linux/sched/signal.h>
#include <linux/scatterlist.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include "dma-buf-ranges-core.h"

MODULE_IMPORT_NS(DMA_BUF);
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);

#define MAX_SPANS 8

/*
 * A DMA address above 4 GiB.  Where dma_addr_t is 32-bit it is truncated,
 * and the cases that use one skip (need_64bit()).
 */
#define DMA64(addr) ((dma_addr_t)(addr))

/* Addresses and buffers beyond 4 GiB need 64-bit dma_addr_t and size_t. */
static bool need_64bit(struct kunit *test)
{
	if (sizeof(dma_addr_t) >= sizeof(u64) && BITS_PER_LONG == 64)
		return true;
	kunit_skip(test, "needs a 64-bit dma_addr_t and size_t");
	return false;
}

/*
 * The exporter's state.  It lives until the dma-buf is released, which
 * may be after the test case returns, so it is not a kunit allocation.
 */
struct mock_exporter {
	struct dma_buf_range spans[MAX_SPANS];
	unsigned int nr_spans;
	int error;		/* returned by the next map, then cleared */
	bool revoked;		/* maps fail with -ENODEV */
	bool bad_empty;		/* the next list or table is empty */
	int scrambled;		/* tables given back with page links mangled */
	int live_maps;		/* mappings handed out and not yet returned */
	int range_maps;		/* calls of the range op */
	int sgt_maps;		/* calls of the sg_table op */
	int pins;
	int detaches;		/* calls of the exporter's detach */
};

/* The importing device, one per test case. */
struct mock_device {
	struct device *dev;
	struct device_dma_parameters parms;
};

struct mock_import {
	struct kunit *test;
	struct device *dev;
	struct device_dma_parameters *parms;
	struct mock_exporter *exp;
	struct dma_buf *dmabuf;
	int moves;
	const struct dma_buf_ranges *held;	/* dropped by move_notify */
	struct sg_table *held_sgt;		/* likewise */
};

/* Every exporter op runs with the reservation lock held. */
static void mock_locked(struct dma_buf_attachment *attach)
{
	struct kunit *test = kunit_get_current_test();

	dma_resv_assert_held(attach->dmabuf->resv);
	if (test)
		KUNIT_EXPECT_TRUE(test, dma_resv_is_locked(attach->dmabuf->resv));
}

static struct dma_buf_ranges *mock_map_ranges(struct dma_buf_attachment *attach,
					      enum dma_data_direction dir)
{
	struct mock_exporter *exp = attach->dmabuf->priv;
	struct dma_buf_ranges *ranges;
	int error = exp->error;

	mock_locked(attach);
	exp->range_maps++;
	exp->error = 0;
	if (error)
		return ERR_PTR(error);
	if (exp->revoked)
		return ERR_PTR(-ENODEV);

	ranges = dma_buf_ranges_alloc(exp->nr_spans, GFP_KERNEL);
	if (!ranges)
		return ERR_PTR(-ENOMEM);
	memcpy(ranges->ranges, exp->spans, exp->nr_spans * sizeof(exp->spans[0]));
	if (exp->bad_empty)
		ranges->nr = 0;
	ranges->exporter_priv = exp;
	exp->live_maps++;
	return ranges;
}

static void mock_unmap_ranges(struct dma_buf_attachment *attach,
			      struct dma_buf_ranges *ranges,
			      enum dma_data_direction dir)
{
	struct mock_exporter *exp = attach->dmabuf->priv;

	mock_locked(attach);
	WARN_ON(ranges->exporter_priv != exp);
	exp->live_maps--;
	dma_buf_ranges_free(ranges);
}

/* A legacy P2P exporter: page-less entries, one per span. */
static struct sg_table *mock_map_sgt(struct dma_buf_attachment *attach,
				     enum dma_data_direction dir)
{
	struct mock_exporter *exp = attach->dmabuf->priv;
	struct scatterlist *sg;
	struct sg_table *sgt;
	unsigned int i;
	int error = exp->error;

	mock_locked(attach);
	exp->sgt_maps++;
	exp->error = 0;
	if (error)
		return ERR_PTR(error);
	if (exp->revoked)
		return ERR_PTR(-ENODEV);

	sgt = kzalloc(sizeof(*sgt), GFP_KERNEL);
	if (!sgt || sg_alloc_table(sgt, exp->nr_spans, GFP_KERNEL)) {
		kfree(sgt);
		return ERR_PTR(-ENOMEM);
	}
	for_each_sgtable_dma_sg(sgt, sg, i) {
		sg_dma_address(sg) = exp->spans[i].addr;
		sg_dma_len(sg) = exp->spans[i].len;
	}
	if (exp->bad_empty)
		sgt->nents = 0;
	exp->bad_empty = false;
	exp->live_maps++;
	return sgt;
}

static void mock_unmap_sgt(struct dma_buf_attachment *attach,
			   struct sg_table *sgt, enum dma_data_direction dir)
{
	struct mock_exporter *exp = attach->dmabuf->priv;
	struct scatterlist *sg;
	int i;

	mock_locked(attach);
	/* The table must come back as the exporter made it: no page. */
	for_each_sgtable_sg(sgt, sg, i)
		if (sg->page_link & ~0xffUL)
			exp->scrambled++;
	exp->live_maps--;
	sg_free_table(sgt);
	kfree(sgt);
}

static int mock_pin(struct dma_buf_attachment *attach)
{
	struct mock_exporter *exp = attach->dmabuf->priv;

	mock_locked(attach);
	exp->pins++;
	return 0;
}

static void mock_unpin(struct dma_buf_attachment *attach)
{
	struct mock_exporter *exp = attach->dmabuf->priv;

	mock_locked(attach);
	exp->pins--;
}

static void mock_release(struct dma_buf *dmabuf)
{
	kfree(dmabuf->priv);
}

/*
 * Dynamic exporters (with pin/unpin), so that dynamic importers get a fresh
 * mapping per map call; the static ones show the core's attach-time cache.
 */
static const struct dma_buf_ops ranges_only_ops = {
	.map_dma_ranges = mock_map_ranges,
	.unmap_dma_ranges = mock_unmap_ranges,
	.pin = mock_pin,
	.unpin = mock_unpin,
	.release = mock_release,
};

static const struct dma_buf_ops sgt_only_ops = {
	.map_dma_buf = mock_map_sgt,
	.unmap_dma_buf = mock_unmap_sgt,
	.pin = mock_pin,
	.unpin = mock_unpin,
	.release = mock_release,
};

static const struct dma_buf_ops both_ops = {
	.map_dma_buf = mock_map_sgt,
	.unmap_dma_buf = mock_unmap_sgt,
	.map_dma_ranges = mock_map_ranges,
	.unmap_dma_ranges = mock_unmap_ranges,
	.pin = mock_pin,
	.unpin = mock_unpin,
	.release = mock_release,
};

static const struct dma_buf_ops static_ranges_ops = {
	.map_dma_ranges = mock_map_ranges,
	.unmap_dma_ranges = mock_unmap_ranges,
	.release = mock_release,
};

static const struct dma_buf_ops static_sgt_ops = {
	.map_dma_buf = mock_map_sgt,
	.unmap_dma_buf = mock_unmap_sgt,
	.release = mock_release,
};

static const struct dma_buf_ops static_both_ops = {
	.map_dma_buf = mock_map_sgt,
	.unmap_dma_buf = mock_unmap_sgt,
	.map_dma_ranges = mock_map_ranges,
	.unmap_dma_ranges = mock_unmap_ranges,
	.release = mock_release,
};

/* An exporter whose attach refuses peer-to-peer, as amdgpu's may. */
static int mock_attach_no_p2p(struct dma_buf *dmabuf,
			      struct dma_buf_attachment *attach)
{
	attach->peer2peer = false;
	return 0;
}

static void mock_detach(struct dma_buf *dmabuf,
			struct dma_buf_attachment *attach)
{
	struct mock_exporter *exp = dmabuf->priv;

	exp->detaches++;
}

static const struct dma_buf_ops no_p2p_ranges_ops = {
	.attach = mock_attach_no_p2p,
	.detach = mock_detach,
	.map_dma_ranges = mock_map_ranges,
	.unmap_dma_ranges = mock_unmap_ranges,
	.pin = mock_pin,
	.unpin = mock_unpin,
	.release = mock_release,
};

/* Like udmabuf and drm prime: the first mapping of each attachment stays. */
static const struct dma_buf_ops cached_sgt_ops = {
	.cache_sgt_mapping = true,
	.map_dma_buf = mock_map_sgt,
	.unmap_dma_buf = mock_unmap_sgt,
	.release = mock_release,
};

static void mock_move_notify(struct dma_buf_attachment *attach)
{
	struct mock_import *imp = attach->importer_priv;

	imp->moves++;
	if (attach->map_type == DMA_BUF_MAP_RANGES && imp->held) {
		dma_buf_unmap_ranges(attach, imp->held, DMA_BIDIRECTIONAL);
		imp->held = NULL;
	}
	if (attach->map_type == DMA_BUF_MAP_SGT && imp->held_sgt) {
		dma_buf_unmap_attachment(attach, imp->held_sgt,
					 DMA_BIDIRECTIONAL);
		imp->held_sgt = NULL;
	}
}

/* A dynamic range importer. */
static const struct dma_buf_attach_ops mock_importer_ops = {
	.allow_peer2peer = true,
	.map_types = BIT(DMA_BUF_MAP_RANGES),
	.move_notify = mock_move_notify,
};

/* A dynamic P2P sg_table importer, such as RDMA's on 6.12. */
static const struct dma_buf_attach_ops mock_sgt_importer_ops = {
	.allow_peer2peer = true,
	.map_types = BIT(DMA_BUF_MAP_SGT),
	.move_notify = mock_move_notify,
};

/* An importer that takes either kind. */
static const struct dma_buf_attach_ops mock_any_importer_ops = {
	.allow_peer2peer = true,
	.map_types = BIT(DMA_BUF_MAP_SGT) | BIT(DMA_BUF_MAP_RANGES),
	.move_notify = mock_move_notify,
};

/* A dynamic sg_table importer that walks the pages of what it imports. */
static const struct dma_buf_attach_ops mock_page_importer_ops = {
	.move_notify = mock_move_notify,
};

/* A range importer without peer2peer: ranges need no pages. */
static const struct dma_buf_attach_ops mock_no_p2p_range_importer_ops = {
	.map_types = BIT(DMA_BUF_MAP_RANGES),
	.move_notify = mock_move_notify,
};

static void put_dmabuf(void *dmabuf)
{
	dma_buf_put(dmabuf);
}

/*
 * Export a buffer of @size bytes made of @nr spans, for a kunit device to
 * import; 0 for the spans' total.
 */
static struct mock_import *mock_setup_sized(struct kunit *test,
					    const struct dma_buf_ops *ops,
					    const struct dma_buf_range *spans,
					    unsigned int nr, u64 size)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct mock_device *mdev = test->priv;
	struct mock_import *imp;
	struct mock_exporter *exp;
	unsigned int i;
	u64 total = 0;

	imp = kunit_kzalloc(test, sizeof(*imp), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, imp);
	imp->test = test;
	imp->dev = mdev->dev;
	imp->parms = &mdev->parms;

	exp = kzalloc(sizeof(*exp), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, exp);
	KUNIT_ASSERT_LE(test, nr, MAX_SPANS);
	memcpy(exp->spans, spans, nr * sizeof(*spans));
	exp->nr_spans = nr;
	imp->exp = exp;

	info.ops = ops;
	info.priv = exp;
	for (i = 0; i < nr; i++)
		total += spans[i].len;
	if (size)
		total = size;
	info.size = total;
	if (info.size != total) {
		kfree(exp);
		KUNIT_FAIL_AND_ABORT(test, "%llu bytes do not fit size_t", total);
	}
	imp->dmabuf = dma_buf_export(&info);
	if (IS_ERR(imp->dmabuf))
		kfree(exp);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, imp->dmabuf);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, put_dmabuf,
							   imp->dmabuf));
	return imp;
}

static struct mock_import *mock_setup(struct kunit *test,
				      const struct dma_buf_ops *ops,
				      const struct dma_buf_range *spans,
				      unsigned int nr)
{
	return mock_setup_sized(test, ops, spans, nr, 0);
}

/* Give the importing device its own segment limits. */
static void set_seg_limits(struct mock_import *imp, unsigned int max_seg,
			   unsigned long boundary)
{
	imp->parms->max_segment_size = max_seg;
	imp->parms->segment_boundary_mask = boundary;
	imp->dev->dma_parms = imp->parms;
}

static struct dma_buf_attachment *
attach_with(struct mock_import *imp, const struct dma_buf_attach_ops *ops)
{
	struct dma_buf_attachment *attach;

	attach = dma_buf_dynamic_attach(imp->dmabuf, imp->dev, ops, imp);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(imp->test, attach);
	return attach;
}

/* A dynamic range importer's attachment. */
static struct dma_buf_attachment *attach_dynamic(struct mock_import *imp)
{
	return attach_with(imp, &mock_importer_ops);
}

/* A dynamic P2P sg_table importer's attachment. */
static struct dma_buf_attachment *attach_sgt(struct mock_import *imp)
{
	return attach_with(imp, &mock_sgt_importer_ops);
}

/* Every mapping and pin went back to the exporter. */
static void expect_all_returned(struct mock_import *imp)
{
	KUNIT_EXPECT_EQ(imp->test, imp->exp->live_maps, 0);
	KUNIT_EXPECT_EQ(imp->test, imp->exp->pins, 0);
	KUNIT_EXPECT_EQ(imp->test, imp->exp->scrambled, 0);
}

/* Detach, then check that everything went back. */
static void detach(struct mock_import *imp, struct dma_buf_attachment *attach)
{
	dma_buf_detach(imp->dmabuf, attach);
	expect_all_returned(imp);
}

static void expect_ranges(struct kunit *test, const struct dma_buf_ranges *got,
			  const struct dma_buf_range *want, unsigned int nr)
{
	unsigned int i;

	KUNIT_ASSERT_EQ(test, got->nr, nr);
	for (i = 0; i < nr; i++) {
		KUNIT_EXPECT_EQ_MSG(test, got->ranges[i].addr, want[i].addr,
				    "range %u", i);
		KUNIT_EXPECT_EQ_MSG(test, got->ranges[i].len, want[i].len,
				    "range %u", i);
	}
}

/* Map with the range API, check, unmap; nothing may stay mapped. */
static void map_ranges_and_check(struct mock_import *imp,
				 struct dma_buf_attachment *attach,
				 const struct dma_buf_range *want,
				 unsigned int nr)
{
	struct kunit *test = imp->test;
	const struct dma_buf_ranges *ranges;

	ranges = dma_buf_map_ranges_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, ranges);
	expect_ranges(test, ranges, want, nr);
	dma_buf_unmap_ranges_unlocked(attach, ranges, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);
}

static void test_one_range(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x10000000, SZ_2M } };
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, span, 1);
	struct dma_buf_attachment *attach = attach_dynamic(imp);

	map_ranges_and_check(imp, attach, span, 1);
	KUNIT_EXPECT_EQ(test, imp->exp->range_maps, 1);
	detach(imp, attach);
}

static void test_many_ranges(struct kunit *test)
{
	static const struct dma_buf_range spans[] = {
		{ 0x80000000, SZ_4K }, { 0x7000, SZ_64K },
		{ 0x40000000, SZ_1M }, { 0x40100000, SZ_4K },
		{ 0xfff00000, SZ_1M },
	};
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, spans,
					     ARRAY_SIZE(spans));
	struct dma_buf_attachment *attach = attach_dynamic(imp);

	/* The core hands on exactly what the exporter gave, unmerged. */
	map_ranges_and_check(imp, attach, spans, ARRAY_SIZE(spans));
	detach(imp, attach);
}

static void test_range_over_4g(struct kunit *test)
{
	static const struct dma_buf_range span[] = {
		{ DMA64(0x4000000000ull), 5ull * SZ_1G }
	};
	struct mock_import *imp;
	struct dma_buf_attachment *attach;

	if (!need_64bit(test))
		return;
	imp = mock_setup(test, &ranges_only_ops, span, 1);
	attach = attach_dynamic(imp);

	map_ranges_and_check(imp, attach, span, 1);
	detach(imp, attach);
}

/* Sum the DMA side of @sgt and check each entry against the limits. */
static u64 check_sgt(struct kunit *test, struct sg_table *sgt,
		     dma_addr_t start, u64 max_seg, unsigned long boundary)
{
	struct scatterlist *sg;
	dma_addr_t next = start;
	u64 total = 0;
	int i;

	for_each_sgtable_dma_sg(sgt, sg, i) {
		dma_addr_t a = sg_dma_address(sg);
		u64 len = sg_dma_len(sg);

		KUNIT_EXPECT_EQ(test, a, next);
		KUNIT_EXPECT_GT(test, len, 0);
		KUNIT_EXPECT_LE(test, len, max_seg);
		KUNIT_EXPECT_TRUE(test, PAGE_ALIGNED(len));
		KUNIT_EXPECT_EQ_MSG(test, a & ~(dma_addr_t)boundary,
				    (a + len - 1) & ~(dma_addr_t)boundary,
				    "entry %d crosses the boundary", i);
		next = a + len;
		total += len;
	}
	return total;
}

/* Map an sg_table of a range exporter, check it, unmap it. */
static void map_sgt_and_check(struct mock_import *imp,
			      struct dma_buf_attachment *attach,
			      unsigned int nents, u64 max_seg,
			      unsigned long boundary)
{
	struct kunit *test = imp->test;
	struct sg_table *sgt;

	sgt = dma_buf_map_attachment_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt);
	KUNIT_EXPECT_EQ(test, sgt->nents, nents);
	/* No CPU side: sync and page iterators see no entry. */
	KUNIT_EXPECT_EQ(test, sgt->orig_nents, 0);
	KUNIT_EXPECT_EQ(test, check_sgt(test, sgt, imp->exp->spans[0].addr,
					max_seg, boundary),
			imp->dmabuf->size);
	dma_buf_unmap_attachment_unlocked(attach, sgt, DMA_BIDIRECTIONAL);
}

static void test_sgt_split_default_max_seg(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x80000000, SZ_1M } };
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, span, 1);
	struct dma_buf_attachment *attach = attach_sgt(imp);

	/* No dma_parms: dma_get_max_seg_size() is 64 KiB. */
	map_sgt_and_check(imp, attach, SZ_1M / SZ_64K, SZ_64K, ULONG_MAX);
	detach(imp, attach);
}

static void test_sgt_split_boundary(struct kunit *test)
{
	/* Starts 12 KiB below a 1 MiB boundary, then runs 2 MiB. */
	static const struct dma_buf_range span[] = {
		{ 0x900000 - SZ_16K + SZ_4K, SZ_2M }
	};
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, span, 1);
	struct dma_buf_attachment *attach;

	set_seg_limits(imp, SZ_1G, SZ_1M - 1);
	attach = attach_sgt(imp);
	/* 12 KiB up to the boundary, 1 MiB, then the last 1 MiB - 12 KiB. */
	map_sgt_and_check(imp, attach, 3, SZ_1G, SZ_1M - 1);
	detach(imp, attach);
}

static void test_sgt_split_large(struct kunit *test)
{
	/* A 4 GiB - 1 limit must give page-aligned entries below 4 GiB. */
	static const struct dma_buf_range span[] = {
		{ DMA64(0x1000000000ull), 9ull * SZ_1G }
	};
	struct mock_import *imp;
	struct dma_buf_attachment *attach;

	if (!need_64bit(test))
		return;
	imp = mock_setup(test, &ranges_only_ops, span, 1);
	set_seg_limits(imp, UINT_MAX, ULONG_MAX);
	attach = attach_sgt(imp);
	map_sgt_and_check(imp, attach, 3, UINT_MAX, ULONG_MAX);
	detach(imp, attach);
}

/*
 * Several ranges, each split: every entry is where the one walk that
 * counts and fills the table says it is.
 */
static void test_sgt_of_many_ranges(struct kunit *test)
{
	static const struct dma_buf_range spans[] = {
		{ 0x10000, SZ_128K }, { 0x90000, 3 * SZ_64K }, { 0x7000, SZ_4K },
	};
	static const struct dma_buf_range want[] = {
		{ 0x10000, SZ_64K }, { 0x20000, SZ_64K },
		{ 0x90000, SZ_64K }, { 0xa0000, SZ_64K }, { 0xb0000, SZ_64K },
		{ 0x7000, SZ_4K },
	};
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, spans,
					     ARRAY_SIZE(spans));
	struct dma_buf_attachment *attach = attach_sgt(imp);
	struct scatterlist *sg;
	struct sg_table *sgt;
	int i;

	/* No dma_parms: dma_get_max_seg_size() is 64 KiB. */
	sgt = dma_buf_map_attachment_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt);
	KUNIT_EXPECT_EQ(test, sgt->nents, ARRAY_SIZE(want));
	for_each_sgtable_dma_sg(sgt, sg, i) {
		if (i >= ARRAY_SIZE(want))
			break;
		KUNIT_EXPECT_EQ_MSG(test, sg_dma_address(sg), want[i].addr,
				    "entry %d", i);
		KUNIT_EXPECT_EQ_MSG(test, sg_dma_len(sg), want[i].len,
				    "entry %d", i);
	}
	dma_buf_unmap_attachment_unlocked(attach, sgt, DMA_BIDIRECTIONAL);
	detach(imp, attach);
}

/*
 * DMABUF_DEBUG scrambles the page links of an exporter's sg_table for the
 * importer; the exporter must get it back unscrambled.
 */
static void test_sgt_debug_mangling(struct kunit *test)
{
	static const struct dma_buf_range spans[] = {
		{ 0x80000000, SZ_64K }, { 0x90000000, SZ_64K },
	};
	struct mock_import *imp = mock_setup(test, &sgt_only_ops, spans, 2);
	struct dma_buf_attachment *attach = attach_sgt(imp);
	struct sg_table *sgt;

	if (!IS_ENABLED(CONFIG_DMABUF_DEBUG)) {
		detach(imp, attach);
		kunit_skip(test, "needs CONFIG_DMABUF_DEBUG");
	}

	sgt = dma_buf_map_attachment_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt);
	/* Scrambled for the importer; the DMA side is intact. */
	KUNIT_EXPECT_NE(test, sgt->sgl->page_link & ~0xffUL, 0);
	KUNIT_EXPECT_EQ(test, sg_dma_address(sgt->sgl), 0x80000000);
	dma_buf_unmap_attachment_unlocked(attach, sgt, DMA_BIDIRECTIONAL);
	/* mock_unmap_sgt() counted entries that came back scrambled. */
	detach(imp, attach);
}

static void test_coalesce_sgt_entries(struct kunit *test)
{
	static const struct dma_buf_range entries[] = {
		{ 0x10000, SZ_4K }, { 0x11000, SZ_4K }, { 0x12000, SZ_8K },
		{ 0x40000, SZ_4K }, { 0x30000, SZ_4K }, { 0x31000, SZ_4K },
	};
	static const struct dma_buf_range want[] = {
		{ 0x10000, SZ_16K }, { 0x40000, SZ_4K }, { 0x30000, SZ_8K },
	};
	struct mock_import *imp = mock_setup(test, &sgt_only_ops, entries,
					     ARRAY_SIZE(entries));
	struct dma_buf_attachment *attach = attach_dynamic(imp);

	map_ranges_and_check(imp, attach, want, ARRAY_SIZE(want));
	KUNIT_EXPECT_EQ(test, imp->exp->sgt_maps, 1);
	detach(imp, attach);
}

/*
 * sg_dma_len() is 32-bit: entries that run on across 4 GiB, and a run
 * longer than 4 GiB in total, become one range each.
 */
static void test_coalesce_sgt_across_4g(struct kunit *test)
{
	static const struct dma_buf_range entries[] = {
		{ 0xffff0000, SZ_64K }, { DMA64(0x100000000ull), SZ_64K },
		{ DMA64(0x800000000ull), SZ_2G },
		{ DMA64(0x880000000ull), SZ_2G },
		{ DMA64(0x900000000ull), SZ_2G },
	};
	static const struct dma_buf_range want[] = {
		{ 0xffff0000, SZ_128K },
		{ DMA64(0x800000000ull), 3ull * SZ_2G },
	};
	struct mock_import *imp;
	struct dma_buf_attachment *attach;

	if (!need_64bit(test))
		return;
	imp = mock_setup(test, &sgt_only_ops, entries, ARRAY_SIZE(entries));
	attach = attach_dynamic(imp);
	map_ranges_and_check(imp, attach, want, ARRAY_SIZE(want));
	detach(imp, attach);
}

/*
 * An entry that ends at the top of a 32-bit DMA address space does not
 * run on into one at 0: the merge adds in 64 bits, on every dma_addr_t.
 */
static void test_no_merge_across_dma_wrap(struct kunit *test)
{
	static const struct dma_buf_range entries[] = {
		{ 0xffff0000, SZ_64K }, { 0, SZ_64K },
	};
	struct mock_import *imp = mock_setup(test, &sgt_only_ops, entries,
					     ARRAY_SIZE(entries));
	struct dma_buf_attachment *attach = attach_dynamic(imp);

	map_ranges_and_check(imp, attach, entries, ARRAY_SIZE(entries));
	detach(imp, attach);
}

/* An exporter's sg_table with no DMA entry is not a mapping. */
static void test_empty_sgt_rejected(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x10000, SZ_64K } };
	struct mock_import *imp = mock_setup(test, &sgt_only_ops, span, 1);
	struct dma_buf_attachment *attach = attach_dynamic(imp);
	const struct dma_buf_ranges *ranges;

	imp->exp->bad_empty = true;
	ranges = dma_buf_map_ranges_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(ranges), -EINVAL);
	KUNIT_EXPECT_EQ(test, imp->exp->sgt_maps, 1);
	detach(imp, attach);
}

/* An exporter with both kinds serves each importer its own. */
static void test_both_ops_use_native(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x10000, SZ_64K } };
	struct mock_import *imp = mock_setup(test, &both_ops, span, 1);
	struct dma_buf_attachment *ranges_attach = attach_dynamic(imp);
	struct dma_buf_attachment *sgt_attach = attach_sgt(imp);
	struct sg_table *sgt;

	map_ranges_and_check(imp, ranges_attach, span, 1);
	sgt = dma_buf_map_attachment_unlocked(sgt_attach, DMA_BIDIRECTIONAL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt);
	dma_buf_unmap_attachment_unlocked(sgt_attach, sgt, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, imp->exp->range_maps, 1);
	KUNIT_EXPECT_EQ(test, imp->exp->sgt_maps, 1);
	detach(imp, sgt_attach);
	detach(imp, ranges_attach);
}

/*
 * Map a list the exporter breaks with @a and @b in place of its two spans;
 * the core must refuse it.  Each list below breaks one rule only.
 */
static void expect_list_refused(struct mock_import *imp,
				struct dma_buf_attachment *attach,
				struct dma_buf_range a, struct dma_buf_range b,
				const char *why)
{
	struct mock_exporter *exp = imp->exp;
	struct dma_buf_range saved[2] = { exp->spans[0], exp->spans[1] };
	const struct dma_buf_ranges *ranges;

	exp->spans[0] = a;
	exp->spans[1] = b;
	ranges = dma_buf_map_ranges_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ_MSG(imp->test, PTR_ERR(ranges), -EINVAL, "%s", why);
	if (!IS_ERR(ranges))
		dma_buf_unmap_ranges_unlocked(attach, ranges,
					      DMA_BIDIRECTIONAL);
	exp->spans[0] = saved[0];
	exp->spans[1] = saved[1];
}

#define SPAN(a, l) ((struct dma_buf_range){ DMA64(a), (l) })

static void test_invalid_lists_rejected(struct kunit *test)
{
	static const struct dma_buf_range spans[] = {
		{ 0x10000, SZ_64K }, { 0x40000, SZ_64K },
	};
	const dma_addr_t last_page = (dma_addr_t)~0 & PAGE_MASK;
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, spans, 2);
	struct dma_buf_attachment *attach = attach_dynamic(imp);
	struct dma_buf_attachment *sgt_attach = attach_sgt(imp);
	const struct dma_buf_ranges *ranges;
	struct sg_table *sgt;
	int maps = 8;

	imp->exp->bad_empty = true;
	ranges = dma_buf_map_ranges_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(ranges), -EINVAL);
	imp->exp->bad_empty = true;
	sgt = dma_buf_map_attachment_unlocked(sgt_attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(sgt), -EINVAL);
	imp->exp->bad_empty = false;
	detach(imp, sgt_attach);

	/* The buffer is 128 KiB. */
	expect_list_refused(imp, attach, SPAN(0x10000, SZ_4K),
			    SPAN(0x40000, SZ_64K), "shorter than the buffer");
	expect_list_refused(imp, attach, SPAN(0x10000, SZ_1M),
			    SPAN(0x40000, SZ_64K), "longer than the buffer");
	expect_list_refused(imp, attach, SPAN(0x10000, SZ_128K),
			    SPAN(0x40000, 0), "a zero-length range");
	expect_list_refused(imp, attach, SPAN(0x10200, SZ_64K),
			    SPAN(0x40000, SZ_64K), "address not page aligned");
	expect_list_refused(imp, attach, SPAN(0x10000, SZ_64K + SZ_2K),
			    SPAN(0x40000, SZ_64K - SZ_2K),
			    "lengths not page aligned");
	expect_list_refused(imp, attach, SPAN(last_page, SZ_64K),
			    SPAN(0x40000, SZ_64K),
			    "wraps the DMA address space");
	/* Where dma_addr_t is 32-bit, the wrap check refuses these first. */
	if (sizeof(dma_addr_t) >= sizeof(u64)) {
		expect_list_refused(imp, attach, SPAN(0, (1ull << 63) + SZ_64K),
				    SPAN(0, (1ull << 63) + SZ_64K),
				    "lengths add up to the size modulo 2^64");
		maps++;
	}

	/* Every refused list went back to the exporter. */
	KUNIT_EXPECT_EQ(test, imp->exp->range_maps, maps);
	detach(imp, attach);
}

/* dma_buf_export() takes whole pairs of ops and caches only sg_tables. */
static void test_export_needs_paired_ops(struct kunit *test)
{
	struct dma_buf_ops ops = {};

	KUNIT_EXPECT_FALSE(test, dma_buf_ops_valid_map(&ops));
	ops.map_dma_buf = mock_map_sgt;
	KUNIT_EXPECT_FALSE(test, dma_buf_ops_valid_map(&ops));
	ops.unmap_dma_buf = mock_unmap_sgt;
	KUNIT_EXPECT_TRUE(test, dma_buf_ops_valid_map(&ops));
	ops.map_dma_ranges = mock_map_ranges;
	KUNIT_EXPECT_FALSE(test, dma_buf_ops_valid_map(&ops));
	ops.unmap_dma_ranges = mock_unmap_ranges;
	KUNIT_EXPECT_TRUE(test, dma_buf_ops_valid_map(&ops));
	ops.map_dma_buf = NULL;
	KUNIT_EXPECT_FALSE(test, dma_buf_ops_valid_map(&ops));
	ops.unmap_dma_buf = NULL;
	KUNIT_EXPECT_TRUE(test, dma_buf_ops_valid_map(&ops));
	ops.cache_sgt_mapping = true;
	KUNIT_EXPECT_FALSE(test, dma_buf_ops_valid_map(&ops));
}

static void test_exporter_error_propagated(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x10000, SZ_64K } };
	const struct dma_buf_ops *ops[] = { &ranges_only_ops, &sgt_only_ops };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ops); i++) {
		struct mock_import *imp = mock_setup(test, ops[i], span, 1);
		struct dma_buf_attachment *attach = attach_dynamic(imp);
		struct dma_buf_attachment *sgt_attach = attach_sgt(imp);
		const struct dma_buf_ranges *ranges;
		struct sg_table *sgt;

		imp->exp->error = -EIO;
		ranges = dma_buf_map_ranges_unlocked(attach, DMA_BIDIRECTIONAL);
		KUNIT_EXPECT_EQ(test, PTR_ERR(ranges), -EIO);
		imp->exp->error = -EREMOTEIO;
		sgt = dma_buf_map_attachment_unlocked(sgt_attach,
						      DMA_BIDIRECTIONAL);
		KUNIT_EXPECT_EQ(test, PTR_ERR(sgt), -EREMOTEIO);
		KUNIT_EXPECT_EQ(test, attach->map_count, 0);
		KUNIT_EXPECT_EQ(test, sgt_attach->map_count, 0);
		/* Failed maps give their pins back too. */
		detach(imp, sgt_attach);
		detach(imp, attach);
	}
}

static void test_revoked_gives_enodev(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x10000, SZ_64K } };
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, span, 1);
	struct dma_buf_attachment *attach = attach_dynamic(imp);
	struct dma_buf_attachment *sgt_attach = attach_sgt(imp);
	struct dma_buf *dmabuf = imp->dmabuf;
	const struct dma_buf_ranges *again;
	struct sg_table *sgt;

	/* One importer holds ranges, another a page-less sg_table. */
	dma_resv_lock(dmabuf->resv, NULL);
	imp->held = dma_buf_map_ranges(attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_FALSE(test, IS_ERR_OR_NULL(imp->held));
	imp->held_sgt = dma_buf_map_attachment(sgt_attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_FALSE(test, IS_ERR_OR_NULL(imp->held_sgt));
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 2);

	/* The exporter revokes: the importers are told and drop them. */
	imp->exp->revoked = true;
	dma_buf_move_notify(dmabuf);
	KUNIT_EXPECT_EQ(test, imp->moves, 2);
	KUNIT_EXPECT_NULL(test, imp->held);
	KUNIT_EXPECT_NULL(test, imp->held_sgt);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);
	KUNIT_EXPECT_EQ(test, attach->map_count + sgt_attach->map_count, 0);

	again = dma_buf_map_ranges(attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(again), -ENODEV);
	sgt = dma_buf_map_attachment(sgt_attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(sgt), -ENODEV);
	imp->held = NULL;
	imp->held_sgt = NULL;

	/* Access restored: mapping works again. */
	imp->exp->revoked = false;
	dma_buf_move_notify(dmabuf);
	again = dma_buf_map_ranges(attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_FALSE(test, IS_ERR_OR_NULL(again));
	if (!IS_ERR_OR_NULL(again))
		dma_buf_unmap_ranges(attach, again, DMA_BIDIRECTIONAL);
	dma_resv_unlock(dmabuf->resv);
	detach(imp, sgt_attach);
	detach(imp, attach);
}

/*
 * A pinned dynamic importer of a dynamic range exporter, through ranges
 * and through the page-less sg_table: without move_notify the core pins
 * each mapping as well.
 */
static void test_pinned_dynamic_importer(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x10000, SZ_64K } };
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, span, 1);
	struct dma_buf_attachment *attach = attach_dynamic(imp);
	struct dma_buf_attachment *sgt_attach = attach_sgt(imp);
	const struct dma_buf_ranges *ranges;
	int pins = IS_ENABLED(CONFIG_DMABUF_MOVE_NOTIFY) ? 1 : 2;
	struct sg_table *sgt;
	int pinned, sgt_pinned;

	dma_resv_lock(imp->dmabuf->resv, NULL);
	KUNIT_EXPECT_EQ(test, dma_buf_pin(attach), 0);
	ranges = dma_buf_map_ranges(attach, DMA_FROM_DEVICE);
	pinned = imp->exp->pins;
	if (!IS_ERR(ranges))
		dma_buf_unmap_ranges(attach, ranges, DMA_FROM_DEVICE);
	dma_buf_unpin(attach);

	KUNIT_EXPECT_EQ(test, dma_buf_pin(sgt_attach), 0);
	sgt = dma_buf_map_attachment(sgt_attach, DMA_FROM_DEVICE);
	sgt_pinned = imp->exp->pins;
	if (!IS_ERR(sgt))
		dma_buf_unmap_attachment(sgt_attach, sgt, DMA_FROM_DEVICE);
	dma_buf_unpin(sgt_attach);
	dma_resv_unlock(imp->dmabuf->resv);

	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, ranges);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt);
	KUNIT_EXPECT_EQ(test, pinned, pins);
	KUNIT_EXPECT_EQ(test, sgt_pinned, pins);
	detach(imp, sgt_attach);
	detach(imp, attach);
}

/*
 * When importer and exporter differ in dynamic-ness, the core maps once at
 * attach time, in the attachment's kind, and every map gets that mapping.
 */
static void test_cached_mapping(struct kunit *test)
{
	static const struct dma_buf_range spans[] = {
		{ 0x10000, SZ_64K }, { 0x90000, SZ_128K },
	};
	const struct dma_buf_ops *ops[] = {
		&static_ranges_ops, &static_sgt_ops,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ops); i++) {
		struct mock_import *imp = mock_setup(test, ops[i], spans, 2);
		struct dma_buf_attachment *attach = attach_dynamic(imp);
		const struct dma_buf_ranges *a, *b;

		kunit_info(test, "exporter %u", i);
		KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 1);
		KUNIT_EXPECT_NULL(test, attach->sgt);
		KUNIT_EXPECT_NOT_NULL(test, attach->ranges);

		a = dma_buf_map_ranges_unlocked(attach, DMA_BIDIRECTIONAL);
		b = dma_buf_map_ranges_unlocked(attach, DMA_TO_DEVICE);
		KUNIT_ASSERT_NOT_ERR_OR_NULL(test, a);
		KUNIT_EXPECT_PTR_EQ(test, a, b);
		expect_ranges(test, a, spans, 2);
		dma_buf_unmap_ranges_unlocked(attach, b, DMA_TO_DEVICE);
		dma_buf_unmap_ranges_unlocked(attach, a, DMA_BIDIRECTIONAL);
		KUNIT_EXPECT_EQ(test, attach->map_count, 0);

		/* The cached mapping lives until detach, then goes back. */
		KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 1);
		KUNIT_EXPECT_EQ(test, imp->exp->range_maps + imp->exp->sgt_maps,
				1);
		detach(imp, attach);
	}
}

/*
 * cache_sgt_mapping: a static importer keeps its first sg_table; a range
 * importer of the same exporter has its ranges mapped at attach, as for
 * any static exporter, from one sg_table.
 */
static void test_cache_sgt_mapping(struct kunit *test)
{
	static const struct dma_buf_range spans[] = {
		{ 0x10000, SZ_64K }, { 0x20000, SZ_64K },
	};
	static const struct dma_buf_range want[] = { { 0x10000, SZ_128K } };
	struct mock_import *imp = mock_setup(test, &cached_sgt_ops, spans, 2);
	struct dma_buf_attachment *attach, *sgt_attach;
	const struct dma_buf_ranges *a, *b;
	struct sg_table *sgt, *sgt2;

	sgt_attach = dma_buf_attach(imp->dmabuf, imp->dev);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt_attach);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);
	sgt = dma_buf_map_attachment_unlocked(sgt_attach, DMA_TO_DEVICE);
	sgt2 = dma_buf_map_attachment_unlocked(sgt_attach, DMA_TO_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt);
	KUNIT_EXPECT_PTR_EQ(test, sgt, sgt2);
	KUNIT_EXPECT_EQ(test, sgt_attach->map_count, 0);
	dma_buf_unmap_attachment_unlocked(sgt_attach, sgt, DMA_TO_DEVICE);

	attach = attach_dynamic(imp);
	a = dma_buf_map_ranges_unlocked(attach, DMA_TO_DEVICE);
	b = dma_buf_map_ranges_unlocked(attach, DMA_FROM_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, a);
	/* Cached for both directions, as the core's attach-time mappings. */
	KUNIT_EXPECT_PTR_EQ(test, a, b);
	expect_ranges(test, a, want, 1);
	dma_buf_unmap_ranges_unlocked(attach, a, DMA_TO_DEVICE);
	KUNIT_EXPECT_EQ(test, imp->exp->sgt_maps, 2);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 2);
	dma_buf_detach(imp->dmabuf, attach);
	detach(imp, sgt_attach);
}

/* One cell of the importer x exporter table of "Mapping types". */
struct type_cell {
	const char *name;
	const struct dma_buf_attach_ops *importer;	/* NULL: static */
	const struct dma_buf_ops *exporter;
	int want;		/* DMA_BUF_MAP_*, or the attach error */
};

#define CELL(n, i, e, w) { #n, i, e, w }

static const struct type_cell type_cells[] = {
	CELL(ranges_of_dynamic_ranges, &mock_importer_ops, &ranges_only_ops,
	     DMA_BUF_MAP_RANGES),
	CELL(ranges_of_dynamic_sgt, &mock_importer_ops, &sgt_only_ops,
	     DMA_BUF_MAP_RANGES),
	CELL(ranges_of_dynamic_both, &mock_importer_ops, &both_ops,
	     DMA_BUF_MAP_RANGES),
	CELL(ranges_of_static_ranges, &mock_importer_ops, &static_ranges_ops,
	     DMA_BUF_MAP_RANGES),
	CELL(ranges_of_static_sgt, &mock_importer_ops, &static_sgt_ops,
	     DMA_BUF_MAP_RANGES),
	CELL(ranges_no_p2p_of_dynamic_ranges, &mock_no_p2p_range_importer_ops,
	     &ranges_only_ops, DMA_BUF_MAP_RANGES),
	CELL(ranges_no_p2p_of_static_ranges, &mock_no_p2p_range_importer_ops,
	     &static_ranges_ops, DMA_BUF_MAP_RANGES),
	CELL(p2p_sgt_of_dynamic_ranges, &mock_sgt_importer_ops,
	     &ranges_only_ops, DMA_BUF_MAP_SGT),
	CELL(p2p_sgt_of_dynamic_sgt, &mock_sgt_importer_ops, &sgt_only_ops,
	     DMA_BUF_MAP_SGT),
	CELL(p2p_sgt_of_dynamic_both, &mock_sgt_importer_ops, &both_ops,
	     DMA_BUF_MAP_SGT),
	CELL(p2p_sgt_of_static_ranges, &mock_sgt_importer_ops,
	     &static_ranges_ops, DMA_BUF_MAP_SGT),
	CELL(p2p_sgt_of_static_sgt, &mock_sgt_importer_ops, &static_sgt_ops,
	     DMA_BUF_MAP_SGT),
	CELL(either_of_dynamic_ranges, &mock_any_importer_ops,
	     &ranges_only_ops, DMA_BUF_MAP_RANGES),
	CELL(either_of_dynamic_sgt, &mock_any_importer_ops, &sgt_only_ops,
	     DMA_BUF_MAP_SGT),
	CELL(either_of_dynamic_both, &mock_any_importer_ops, &both_ops,
	     DMA_BUF_MAP_RANGES),
	CELL(either_of_static_ranges, &mock_any_importer_ops,
	     &static_ranges_ops, DMA_BUF_MAP_RANGES),
	CELL(either_of_static_sgt, &mock_any_importer_ops, &static_sgt_ops,
	     DMA_BUF_MAP_SGT),
	CELL(page_sgt_of_dynamic_ranges_refused, &mock_page_importer_ops,
	     &ranges_only_ops, -EOPNOTSUPP),
	CELL(page_sgt_of_dynamic_sgt, &mock_page_importer_ops, &sgt_only_ops,
	     DMA_BUF_MAP_SGT),
	CELL(page_sgt_of_dynamic_both, &mock_page_importer_ops, &both_ops,
	     DMA_BUF_MAP_SGT),
	CELL(page_sgt_of_static_ranges_refused, &mock_page_importer_ops,
	     &static_ranges_ops, -EOPNOTSUPP),
	CELL(page_sgt_of_static_sgt, &mock_page_importer_ops, &static_sgt_ops,
	     DMA_BUF_MAP_SGT),
	CELL(static_of_dynamic_ranges_refused, NULL, &ranges_only_ops,
	     -EOPNOTSUPP),
	CELL(static_of_dynamic_sgt, NULL, &sgt_only_ops, DMA_BUF_MAP_SGT),
	CELL(static_of_dynamic_both, NULL, &both_ops, DMA_BUF_MAP_SGT),
	CELL(static_of_static_ranges_refused, NULL, &static_ranges_ops,
	     -EOPNOTSUPP),
	CELL(static_of_static_sgt, NULL, &static_sgt_ops, DMA_BUF_MAP_SGT),
	CELL(ranges_of_static_both, &mock_importer_ops, &static_both_ops,
	     DMA_BUF_MAP_RANGES),
	CELL(p2p_sgt_of_static_both, &mock_sgt_importer_ops, &static_both_ops,
	     DMA_BUF_MAP_SGT),
	CELL(either_of_static_both, &mock_any_importer_ops, &static_both_ops,
	     DMA_BUF_MAP_RANGES),
	CELL(page_sgt_of_static_both, &mock_page_importer_ops,
	     &static_both_ops, DMA_BUF_MAP_SGT),
	CELL(static_of_static_both, NULL, &static_both_ops, DMA_BUF_MAP_SGT),
	CELL(ranges_of_cached_sgt, &mock_importer_ops, &cached_sgt_ops,
	     DMA_BUF_MAP_RANGES),
	CELL(p2p_sgt_of_cached_sgt, &mock_sgt_importer_ops, &cached_sgt_ops,
	     DMA_BUF_MAP_SGT),
	CELL(either_of_cached_sgt, &mock_any_importer_ops, &cached_sgt_ops,
	     DMA_BUF_MAP_SGT),
	CELL(page_sgt_of_cached_sgt, &mock_page_importer_ops, &cached_sgt_ops,
	     DMA_BUF_MAP_SGT),
	CELL(static_of_cached_sgt, NULL, &cached_sgt_ops, DMA_BUF_MAP_SGT),
};

static void type_cell_desc(const struct type_cell *cell, char *desc)
{
	strscpy(desc, cell->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(type_cell, type_cells, type_cell_desc);

/*
 * Map the attachment's one kind, check what came and the pins held while
 * it is mapped, give it back.  @kept: the mapping stays with the
 * attachment (cached at attach, or by cache_sgt_mapping).
 */
static void map_cell(struct mock_import *imp, struct dma_buf_attachment *attach,
		     bool kept, int pins)
{
	struct kunit *test = imp->test;

	if (attach->map_type == DMA_BUF_MAP_RANGES) {
		const struct dma_buf_ranges *ranges;

		ranges = dma_buf_map_ranges_unlocked(attach, DMA_BIDIRECTIONAL);
		KUNIT_ASSERT_NOT_ERR_OR_NULL(test, ranges);
		expect_ranges(test, ranges, imp->exp->spans, 2);
		KUNIT_EXPECT_EQ(test, attach->map_count, kept ? 0 : 1);
		KUNIT_EXPECT_EQ(test, imp->exp->pins, pins);
		dma_buf_unmap_ranges_unlocked(attach, ranges, DMA_BIDIRECTIONAL);
	} else {
		struct sg_table *sgt;
		u64 total = 0;
		struct scatterlist *sg;
		int i;

		sgt = dma_buf_map_attachment_unlocked(attach, DMA_BIDIRECTIONAL);
		KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt);
		KUNIT_EXPECT_EQ(test, sg_dma_address(sgt->sgl),
				imp->exp->spans[0].addr);
		for_each_sgtable_dma_sg(sgt, sg, i)
			total += sg_dma_len(sg);
		KUNIT_EXPECT_EQ(test, total, imp->dmabuf->size);
		KUNIT_EXPECT_EQ(test, attach->map_count, kept ? 0 : 1);
		KUNIT_EXPECT_EQ(test, imp->exp->pins, pins);
		dma_buf_unmap_attachment_unlocked(attach, sgt,
						  DMA_BIDIRECTIONAL);
	}
	KUNIT_EXPECT_EQ(test, attach->map_count, 0);
}

/*
 * Each cell: the kind chosen at attach (or the refusal, before the
 * exporter is asked), the exporter op that served it (its own kind where
 * it has it, else the core's conversion), the mapping cached at attach
 * where importer and exporter differ in dynamic-ness, or kept from the
 * first map by cache_sgt_mapping; the pins: one for the cache of a
 * dynamic exporter, and one per map of a dynamic importer when
 * CONFIG_DMABUF_MOVE_NOTIFY is off (the suite runs on both kernels); and
 * everything given back at detach.
 */
static void test_map_type(struct kunit *test)
{
	static const struct dma_buf_range spans[] = {
		{ 0x10000, SZ_64K }, { 0x90000, SZ_128K },
	};
	const struct type_cell *cell = test->param_value;
	const struct dma_buf_ops *ops = cell->exporter;
	struct mock_import *imp = mock_setup(test, ops, spans, 2);
	struct dma_buf_attachment *attach;
	bool cached = !!cell->importer != !!ops->pin;
	bool kept = cached || (ops->cache_sgt_mapping &&
			       cell->want == DMA_BUF_MAP_SGT);
	bool pin_per_map = ops->pin && cell->importer &&
			   !IS_ENABLED(CONFIG_DMABUF_MOVE_NOTIFY);
	bool native;

	if (cell->importer)
		attach = dma_buf_dynamic_attach(imp->dmabuf, imp->dev,
						cell->importer, imp);
	else
		attach = dma_buf_attach(imp->dmabuf, imp->dev);
	if (cell->want < 0) {
		KUNIT_EXPECT_EQ(test, PTR_ERR(attach), cell->want);
		KUNIT_EXPECT_EQ(test, imp->exp->range_maps + imp->exp->sgt_maps,
				0);
		if (!IS_ERR(attach))
			dma_buf_detach(imp->dmabuf, attach);
		expect_all_returned(imp);
		return;
	}
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, attach);
	KUNIT_EXPECT_EQ(test, attach->map_type, cell->want);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, cached ? 1 : 0);
	KUNIT_EXPECT_EQ(test, imp->exp->pins, cached && ops->pin ? 1 : 0);

	map_cell(imp, attach, kept,
		 (cached && ops->pin ? 1 : 0) + (pin_per_map ? 1 : 0));
	KUNIT_EXPECT_EQ(test, imp->exp->pins, cached && ops->pin ? 1 : 0);
	native = cell->want == DMA_BUF_MAP_RANGES ? !!ops->map_dma_ranges :
						    !!ops->map_dma_buf;
	KUNIT_EXPECT_EQ(test, imp->exp->range_maps + imp->exp->sgt_maps, 1);
	KUNIT_EXPECT_EQ(test, cell->want == DMA_BUF_MAP_RANGES ?
				      imp->exp->range_maps : imp->exp->sgt_maps,
			native ? 1 : 0);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, kept ? 1 : 0);
	detach(imp, attach);
}

/* Entries a greedy walk cuts [addr, addr + len) into under the limits. */
static unsigned int greedy_segs(u64 addr, u64 len, u64 max_seg, u64 boundary)
{
	unsigned int n = 0;

	while (len) {
		u64 take = min3(len, max_seg, (addr | boundary) - addr + 1);

		addr += take;
		len -= take;
		n++;
	}
	return n;
}

/*
 * The page-less table's entry count, computed per range without a walk,
 * is what the split fills, over spans, maximum segment sizes and segment
 * boundaries that cut them in every way: each table is also checked entry
 * by entry against the limits.
 */
static void test_sgt_split_count_matches_walk(struct kunit *test)
{
	static const struct dma_buf_range spans[] = {
		{ 0x900000 - 3 * SZ_4K, SZ_2M + 5 * SZ_4K },
		{ 0x7ff0000, SZ_1M },
	};
	static const u64 max_segs[] = {
		SZ_4K, 3 * SZ_4K, SZ_64K, SZ_1M + SZ_4K,
	};
	static const unsigned long boundaries[] = {
		SZ_64K - 1, SZ_1M - 1, 0xffffffffUL,
	};
	unsigned int i, j, k;

	if (PAGE_SIZE != SZ_4K)
		kunit_skip(test, "spans and limits are in 4 KiB pages");
	for (i = 0; i < ARRAY_SIZE(spans); i++) {
		for (j = 0; j < ARRAY_SIZE(max_segs); j++) {
			for (k = 0; k < ARRAY_SIZE(boundaries); k++) {
				struct mock_import *imp;
				struct dma_buf_attachment *attach;

				imp = mock_setup(test, &ranges_only_ops,
						 &spans[i], 1);
				set_seg_limits(imp, max_segs[j],
					       boundaries[k]);
				attach = attach_sgt(imp);
				map_sgt_and_check(imp, attach,
						  greedy_segs(spans[i].addr,
							      spans[i].len,
							      max_segs[j],
							      boundaries[k]),
						  max_segs[j], boundaries[k]);
				detach(imp, attach);
			}
		}
	}
}

/*
 * A P2P sg_table importer of a range-only exporter whose attach clears
 * peer2peer cannot use a page-less table: refused at attach, with the
 * exporter's detach called; a range importer still attaches.
 */
static void test_exporter_clears_peer2peer(struct kunit *test)
{
	static const struct dma_buf_range span = { 0x10000, SZ_64K };
	struct mock_import *imp = mock_setup(test, &no_p2p_ranges_ops, &span, 1);
	struct dma_buf_attachment *attach;

	attach = dma_buf_dynamic_attach(imp->dmabuf, imp->dev,
					&mock_sgt_importer_ops, imp);
	KUNIT_EXPECT_EQ(test, PTR_ERR(attach), -EOPNOTSUPP);
	KUNIT_EXPECT_EQ(test, imp->exp->detaches, 1);
	KUNIT_EXPECT_EQ(test, imp->exp->range_maps, 0);

	attach = attach_dynamic(imp);
	KUNIT_EXPECT_EQ(test, attach->map_type, DMA_BUF_MAP_RANGES);
	detach(imp, attach);
	KUNIT_EXPECT_EQ(test, imp->exp->detaches, 2);
}

/*
 * An sg_table longer than the buffer (6.12's importers used only what
 * they asked for) gives ranges cut at the buffer's last page.
 */
static void test_sgt_longer_than_buffer(struct kunit *test)
{
	static const struct dma_buf_range spans[] = {
		{ 0x10000, SZ_64K }, { 0x90000, SZ_128K },
	};
	static const struct dma_buf_range want[] = {
		{ 0x10000, SZ_64K }, { 0x90000, SZ_64K },
	};
	struct mock_import *imp = mock_setup_sized(test, &sgt_only_ops, spans,
						   2, SZ_128K);
	struct dma_buf_attachment *attach = attach_dynamic(imp);
	const struct dma_buf_ranges *ranges;

	ranges = dma_buf_map_ranges_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, ranges);
	expect_ranges(test, ranges, want, 2);
	dma_buf_unmap_ranges_unlocked(attach, ranges, DMA_BIDIRECTIONAL);
	detach(imp, attach);
}

/*
 * A buffer whose size is no page multiple (fastrpc's come from userspace)
 * maps through both kinds as on 6.12: in whole pages, whether the
 * exporter's last entry is the page (dma_get_sgtable()) or ends with the
 * buffer.
 */
static void test_size_not_page_multiple(struct kunit *test)
{
	static const u64 lens[] = { PAGE_SIZE, PAGE_SIZE - 512 };
	const struct dma_buf_ops *ops[] = { &sgt_only_ops, &ranges_only_ops };
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(ops); i++) {
		for (j = 0; j < ARRAY_SIZE(lens); j++) {
			const struct dma_buf_range span = { 0x10000, lens[j] };
			const struct dma_buf_range page = { 0x10000, PAGE_SIZE };
			struct dma_buf_attachment *attach, *sgt_attach;
			struct mock_import *imp;
			struct sg_table *sgt;

			/* A range exporter's lists are in whole pages. */
			if (ops[i] == &ranges_only_ops && lens[j] != PAGE_SIZE)
				continue;
			kunit_info(test, "exporter %u, last entry %llu", i,
				   lens[j]);
			imp = mock_setup_sized(test, ops[i], &span, 1,
					       PAGE_SIZE - 512);
			attach = attach_dynamic(imp);
			map_ranges_and_check(imp, attach, &page, 1);
			sgt_attach = attach_sgt(imp);
			sgt = dma_buf_map_attachment_unlocked(sgt_attach,
							      DMA_BIDIRECTIONAL);
			KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt);
			KUNIT_EXPECT_EQ(test, sg_dma_address(sgt->sgl), 0x10000);
			KUNIT_EXPECT_EQ(test, sg_dma_len(sgt->sgl), lens[j]);
			dma_buf_unmap_attachment_unlocked(sgt_attach, sgt,
							  DMA_BIDIRECTIONAL);
			detach(imp, sgt_attach);
			detach(imp, attach);
		}
	}
}

/*
 * A page-less sg_table of 2^32 entries is refused before the exporter's
 * ranges are walked: the count takes one step per range.
 */
static void test_sgt_too_many_entries(struct kunit *test)
{
	static const struct dma_buf_range span[] = {
		{ DMA64(0x100000000000ull), (u64)PAGE_SIZE << 32 }
	};
	struct mock_import *imp;
	struct dma_buf_attachment *attach;
	struct sg_table *sgt;

	if (!need_64bit(test))
		return;
	imp = mock_setup(test, &ranges_only_ops, span, 1);
	set_seg_limits(imp, PAGE_SIZE, ULONG_MAX);
	attach = attach_sgt(imp);
	sgt = dma_buf_map_attachment_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(sgt), -E2BIG);
	KUNIT_EXPECT_EQ(test, imp->exp->range_maps, 1);
	KUNIT_EXPECT_EQ(test, attach->map_count, 0);
	detach(imp, attach);
}

/*
 * The exporter fails the mapping the core makes at attach: the attach
 * fails with its error, and the pin taken for it is given back.
 */
static void test_attach_cache_error(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x10000, SZ_64K } };
	const struct dma_buf_ops *ops[] = { &static_ranges_ops, &static_sgt_ops,
					    &sgt_only_ops };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ops); i++) {
		struct mock_import *imp = mock_setup(test, ops[i], span, 1);
		struct dma_buf_attachment *attach;

		kunit_info(test, "exporter %u", i);
		imp->exp->error = -EIO;
		if (ops[i]->pin)
			attach = dma_buf_attach(imp->dmabuf, imp->dev);
		else
			attach = dma_buf_dynamic_attach(imp->dmabuf, imp->dev,
							&mock_importer_ops,
							imp);
		KUNIT_EXPECT_EQ(test, PTR_ERR(attach), -EIO);
		if (!IS_ERR(attach))
			dma_buf_detach(imp->dmabuf, attach);
		KUNIT_EXPECT_EQ(test, imp->exp->range_maps + imp->exp->sgt_maps,
				1);
		expect_all_returned(imp);
	}
}

static struct kunit_case dma_buf_ranges_cases[] = {
	KUNIT_CASE(test_one_range),
	KUNIT_CASE(test_many_ranges),
	KUNIT_CASE(test_range_over_4g),
	KUNIT_CASE(test_sgt_split_default_max_seg),
	KUNIT_CASE(test_sgt_split_boundary),
	KUNIT_CASE(test_sgt_split_large),
	KUNIT_CASE(test_sgt_of_many_ranges),
	KUNIT_CASE(test_sgt_debug_mangling),
	KUNIT_CASE(test_coalesce_sgt_entries),
	KUNIT_CASE(test_coalesce_sgt_across_4g),
	KUNIT_CASE(test_no_merge_across_dma_wrap),
	KUNIT_CASE(test_empty_sgt_rejected),
	KUNIT_CASE(test_both_ops_use_native),
	KUNIT_CASE(test_invalid_lists_rejected),
	KUNIT_CASE(test_export_needs_paired_ops),
	KUNIT_CASE(test_exporter_error_propagated),
	KUNIT_CASE(test_revoked_gives_enodev),
	KUNIT_CASE(test_pinned_dynamic_importer),
	KUNIT_CASE(test_cached_mapping),
	KUNIT_CASE(test_cache_sgt_mapping),
	KUNIT_CASE_PARAM(test_map_type, type_cell_gen_params),
	KUNIT_CASE(test_size_not_page_multiple),
	KUNIT_CASE(test_exporter_clears_peer2peer),
	KUNIT_CASE(test_sgt_longer_than_buffer),
	KUNIT_CASE(test_sgt_split_count_matches_walk),
	KUNIT_CASE(test_sgt_too_many_entries),
	KUNIT_CASE(test_attach_cache_error),
	{}
};

static int dma_buf_ranges_test_init(struct kunit *test)
{
	struct mock_device *mdev;

	mdev = kunit_kzalloc(test, sizeof(*mdev), GFP_KERNEL);
	if (!mdev)
		return -ENOMEM;
	mdev->dev = kunit_device_register(test, "dma-buf-ranges-test");
	if (IS_ERR(mdev->dev))
		return PTR_ERR(mdev->dev);
	test->priv = mdev;
	return 0;
}

static struct kunit_suite dma_buf_ranges_suite = {
	.name = "dma-buf-ranges",
	.init = dma_buf_ranges_test_init,
	.test_cases = dma_buf_ranges_cases,
};

kunit_test_suite(dma_buf_ranges_suite);

MODULE_DESCRIPTION("KUnit tests for dma-buf DMA range lists");
MODULE_LICENSE("GPL");
