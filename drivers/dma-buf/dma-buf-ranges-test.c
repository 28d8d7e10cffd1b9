// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for dma-buf range lists: mock exporters with range ops only,
 * sg_table ops only, or both, imported by a kunit device through the range
 * API and the legacy sg_table API.
 */
#include <kunit/device.h>
#include <kunit/test.h>
#include <linux/dma-buf.h>
#include <linux/dma-buf-ranges.h>
#include <linux/dma-resv.h>
#include <linux/scatterlist.h>
#include <linux/sizes.h>
#include <linux/slab.h>

MODULE_IMPORT_NS(DMA_BUF);

#define MAX_SPANS 8

/*
 * The exporter's state.  It lives until the dma-buf is released, which
 * may be after the test case returns, so it is not a kunit allocation.
 */
struct mock_exporter {
	struct dma_buf_range spans[MAX_SPANS];
	unsigned int nr_spans;
	int error;		/* returned by the next map, then cleared */
	bool revoked;		/* maps fail with -ENODEV */
	bool bad_empty;		/* range op returns an empty list */
	bool bad_zero_len;	/* range op returns a zero-length range */
	int live_maps;		/* mappings handed out and not yet returned */
	int range_maps;		/* calls of the range op */
	int sgt_maps;		/* calls of the sg_table op */
	int pins;
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
	struct dma_buf_ranges *held;	/* dropped by move_notify */
};

static struct dma_buf_ranges *mock_map_ranges(struct dma_buf_attachment *attach,
					      enum dma_data_direction dir)
{
	struct mock_exporter *exp = attach->dmabuf->priv;
	struct dma_buf_ranges *ranges;
	int error = exp->error;

	if (dma_buf_is_dynamic(attach->dmabuf))
		dma_resv_assert_held(attach->dmabuf->resv);
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
	if (exp->bad_zero_len)
		ranges->ranges[0].len = 0;
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
	exp->live_maps++;
	return sgt;
}

static void mock_unmap_sgt(struct dma_buf_attachment *attach,
			   struct sg_table *sgt, enum dma_data_direction dir)
{
	struct mock_exporter *exp = attach->dmabuf->priv;

	exp->live_maps--;
	sg_free_table(sgt);
	kfree(sgt);
}

static int mock_pin(struct dma_buf_attachment *attach)
{
	struct mock_exporter *exp = attach->dmabuf->priv;

	exp->pins++;
	return 0;
}

static void mock_unpin(struct dma_buf_attachment *attach)
{
	struct mock_exporter *exp = attach->dmabuf->priv;

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

static void mock_move_notify(struct dma_buf_attachment *attach)
{
	struct mock_import *imp = attach->importer_priv;

	imp->moves++;
	if (imp->held) {
		dma_buf_unmap_ranges(attach, imp->held, DMA_BIDIRECTIONAL);
		imp->held = NULL;
	}
}

static const struct dma_buf_attach_ops mock_importer_ops = {
	.allow_peer2peer = true,
	.move_notify = mock_move_notify,
};

static void put_dmabuf(void *dmabuf)
{
	dma_buf_put(dmabuf);
}

/* Export a buffer made of @nr spans, for a kunit device to import. */
static struct mock_import *mock_setup(struct kunit *test,
				      const struct dma_buf_ops *ops,
				      const struct dma_buf_range *spans,
				      unsigned int nr)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct mock_device *mdev = test->priv;
	struct mock_import *imp;
	struct mock_exporter *exp;
	unsigned int i;

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
		info.size += spans[i].len;
	imp->dmabuf = dma_buf_export(&info);
	if (IS_ERR(imp->dmabuf))
		kfree(exp);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, imp->dmabuf);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, put_dmabuf,
							   imp->dmabuf));
	return imp;
}

/* Give the importing device its own segment limits. */
static void set_seg_limits(struct mock_import *imp, unsigned int max_seg,
			   unsigned long boundary)
{
	imp->parms->max_segment_size = max_seg;
	imp->parms->segment_boundary_mask = boundary;
	imp->dev->dma_parms = imp->parms;
}

static struct dma_buf_attachment *attach_dynamic(struct mock_import *imp)
{
	struct dma_buf_attachment *attach;

	attach = dma_buf_dynamic_attach(imp->dmabuf, imp->dev,
					&mock_importer_ops, imp);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(imp->test, attach);
	return attach;
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
	struct dma_buf_ranges *ranges;

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
	dma_buf_detach(imp->dmabuf, attach);
}

static void test_many_ranges(struct kunit *test)
{
	static const struct dma_buf_range spans[] = {
		{ 0x100000000ull, SZ_4K }, { 0x7000, SZ_64K },
		{ 0x200000000ull, SZ_1M }, { 0x200100000ull, SZ_4K },
		{ 0xfff00000, SZ_1M },
	};
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, spans,
					     ARRAY_SIZE(spans));
	struct dma_buf_attachment *attach = attach_dynamic(imp);

	/* The core hands on exactly what the exporter gave, unmerged. */
	map_ranges_and_check(imp, attach, spans, ARRAY_SIZE(spans));
	dma_buf_detach(imp->dmabuf, attach);
}

static void test_range_over_4g(struct kunit *test)
{
	static const struct dma_buf_range span[] = {
		{ 0x4000000000ull, 5ull * SZ_1G }
	};
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, span, 1);
	struct dma_buf_attachment *attach = attach_dynamic(imp);

	map_ranges_and_check(imp, attach, span, 1);
	dma_buf_detach(imp->dmabuf, attach);
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
		KUNIT_EXPECT_EQ_MSG(test, a & ~(dma_addr_t)boundary,
				    (a + len - 1) & ~(dma_addr_t)boundary,
				    "entry %d crosses the boundary", i);
		next = a + len;
		total += len;
	}
	return total;
}

static void test_sgt_split_default_max_seg(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x80000000, SZ_1M } };
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, span, 1);
	struct dma_buf_attachment *attach = attach_dynamic(imp);
	struct sg_table *sgt;

	/* No dma_parms: dma_get_max_seg_size() is 64 KiB. */
	dma_resv_lock(imp->dmabuf->resv, NULL);
	sgt = dma_buf_map_attachment(attach, DMA_TO_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt);
	KUNIT_EXPECT_EQ(test, sgt->nents, SZ_1M / SZ_64K);
	KUNIT_EXPECT_EQ(test, check_sgt(test, sgt, 0x80000000, SZ_64K,
					ULONG_MAX), SZ_1M);
	dma_buf_unmap_attachment(attach, sgt, DMA_TO_DEVICE);
	dma_resv_unlock(imp->dmabuf->resv);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);
	dma_buf_detach(imp->dmabuf, attach);
}

static void test_sgt_split_boundary(struct kunit *test)
{
	/* Starts 12 KiB below a 1 MiB boundary, then runs 2 MiB. */
	static const struct dma_buf_range span[] = {
		{ 0x900000 - SZ_16K + SZ_4K, SZ_2M }
	};
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, span, 1);
	struct dma_buf_attachment *attach;
	struct sg_table *sgt;

	set_seg_limits(imp, SZ_1G, SZ_1M - 1);
	attach = attach_dynamic(imp);
	dma_resv_lock(imp->dmabuf->resv, NULL);
	sgt = dma_buf_map_attachment(attach, DMA_BIDIRECTIONAL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt);
	/* 12 KiB up to the boundary, 1 MiB, then the last 1 MiB - 12 KiB. */
	KUNIT_EXPECT_EQ(test, sgt->nents, 3);
	KUNIT_EXPECT_EQ(test, sg_dma_len(sgt->sgl), SZ_8K + SZ_4K);
	KUNIT_EXPECT_EQ(test, check_sgt(test, sgt, span[0].addr, SZ_1G,
					SZ_1M - 1), SZ_2M);
	dma_buf_unmap_attachment(attach, sgt, DMA_BIDIRECTIONAL);
	dma_resv_unlock(imp->dmabuf->resv);
	dma_buf_detach(imp->dmabuf, attach);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);
}

static void test_sgt_split_large(struct kunit *test)
{
	/* A 4 GiB - 1 limit must give page-aligned entries below 4 GiB. */
	static const struct dma_buf_range span[] = {
		{ 0x1000000000ull, 9ull * SZ_1G }
	};
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, span, 1);
	struct dma_buf_attachment *attach;
	struct scatterlist *sg;
	struct sg_table *sgt;
	int i;

	set_seg_limits(imp, UINT_MAX, ULONG_MAX);
	attach = attach_dynamic(imp);
	dma_resv_lock(imp->dmabuf->resv, NULL);
	sgt = dma_buf_map_attachment(attach, DMA_BIDIRECTIONAL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt);
	KUNIT_EXPECT_EQ(test, sgt->nents, 3);
	for_each_sgtable_dma_sg(sgt, sg, i)
		KUNIT_EXPECT_TRUE(test, PAGE_ALIGNED(sg_dma_len(sg)));
	KUNIT_EXPECT_EQ(test, check_sgt(test, sgt, span[0].addr, UINT_MAX,
					ULONG_MAX), 9ull * SZ_1G);
	dma_buf_unmap_attachment(attach, sgt, DMA_BIDIRECTIONAL);
	dma_resv_unlock(imp->dmabuf->resv);
	dma_buf_detach(imp->dmabuf, attach);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);
}

static void test_sgt_debug_mangling(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x80000000, SZ_128K } };
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, span, 1);
	struct dma_buf_attachment *attach = attach_dynamic(imp);
	struct sg_table *sgt;

	if (!IS_ENABLED(CONFIG_DMABUF_DEBUG))
		kunit_skip(test, "needs CONFIG_DMABUF_DEBUG");

	dma_resv_lock(imp->dmabuf->resv, NULL);
	sgt = dma_buf_map_attachment(attach, DMA_BIDIRECTIONAL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt);
	/* Page links are scrambled for importers; the DMA side is intact. */
	KUNIT_EXPECT_NE(test, sgt->sgl->page_link & ~0xffUL, 0);
	KUNIT_EXPECT_EQ(test, sg_dma_address(sgt->sgl), 0x80000000);
	KUNIT_EXPECT_EQ(test, sg_dma_len(sgt->sgl), SZ_64K);
	/* Unmap must unscramble before the core frees the table. */
	dma_buf_unmap_attachment(attach, sgt, DMA_BIDIRECTIONAL);
	dma_resv_unlock(imp->dmabuf->resv);
	dma_buf_detach(imp->dmabuf, attach);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);
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
	dma_buf_detach(imp->dmabuf, attach);
}

static void test_both_ops_use_native(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x10000, SZ_64K } };
	struct mock_import *imp = mock_setup(test, &both_ops, span, 1);
	struct dma_buf_attachment *attach = attach_dynamic(imp);
	struct sg_table *sgt;

	map_ranges_and_check(imp, attach, span, 1);
	sgt = dma_buf_map_attachment_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, sgt);
	dma_buf_unmap_attachment_unlocked(attach, sgt, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, imp->exp->range_maps, 1);
	KUNIT_EXPECT_EQ(test, imp->exp->sgt_maps, 1);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);
	dma_buf_detach(imp->dmabuf, attach);
}

static void test_invalid_lists_rejected(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x10000, SZ_64K } };
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, span, 1);
	struct dma_buf_attachment *attach = attach_dynamic(imp);
	struct dma_buf_ranges *ranges;
	struct sg_table *sgt;

	imp->exp->bad_empty = true;
	ranges = dma_buf_map_ranges_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(ranges), -EINVAL);
	sgt = dma_buf_map_attachment_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(sgt), -EINVAL);
	imp->exp->bad_empty = false;

	imp->exp->bad_zero_len = true;
	ranges = dma_buf_map_ranges_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(ranges), -EINVAL);
	imp->exp->bad_zero_len = false;

	/* A list that does not cover the buffer is refused too. */
	imp->exp->spans[0].len = SZ_4K;
	ranges = dma_buf_map_ranges_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(ranges), -EINVAL);

	/* Every refused list went back to the exporter. */
	KUNIT_EXPECT_EQ(test, imp->exp->range_maps, 4);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);
	dma_buf_detach(imp->dmabuf, attach);
}

static void test_exporter_error_propagated(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x10000, SZ_64K } };
	const struct dma_buf_ops *ops[] = { &ranges_only_ops, &sgt_only_ops };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ops); i++) {
		struct mock_import *imp = mock_setup(test, ops[i], span, 1);
		struct dma_buf_attachment *attach = attach_dynamic(imp);
		struct dma_buf_ranges *ranges;
		struct sg_table *sgt;

		imp->exp->error = -EIO;
		ranges = dma_buf_map_ranges_unlocked(attach, DMA_BIDIRECTIONAL);
		KUNIT_EXPECT_EQ(test, PTR_ERR(ranges), -EIO);
		imp->exp->error = -EREMOTEIO;
		sgt = dma_buf_map_attachment_unlocked(attach, DMA_BIDIRECTIONAL);
		KUNIT_EXPECT_EQ(test, PTR_ERR(sgt), -EREMOTEIO);
		KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);
		dma_buf_detach(imp->dmabuf, attach);
	}
}

static void test_revoked_gives_enodev(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x10000, SZ_64K } };
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, span, 1);
	struct dma_buf_attachment *attach = attach_dynamic(imp);
	struct dma_buf *dmabuf = imp->dmabuf;
	struct sg_table *sgt;

	dma_resv_lock(dmabuf->resv, NULL);
	imp->held = dma_buf_map_ranges(attach, DMA_BIDIRECTIONAL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, imp->held);

	/* The exporter revokes: the importer is told and drops its mapping. */
	imp->exp->revoked = true;
	dma_buf_move_notify(dmabuf);
	KUNIT_EXPECT_EQ(test, imp->moves, 1);
	KUNIT_EXPECT_NULL(test, imp->held);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);

	KUNIT_EXPECT_EQ(test, PTR_ERR(dma_buf_map_ranges(attach, DMA_BIDIRECTIONAL)),
			-ENODEV);
	sgt = dma_buf_map_attachment(attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(sgt), -ENODEV);

	/* Access restored: mapping works again. */
	imp->exp->revoked = false;
	dma_buf_move_notify(dmabuf);
	imp->held = dma_buf_map_ranges(attach, DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_FALSE(test, IS_ERR_OR_NULL(imp->held));
	if (!IS_ERR_OR_NULL(imp->held))
		dma_buf_unmap_ranges(attach, imp->held, DMA_BIDIRECTIONAL);
	imp->held = NULL;
	dma_resv_unlock(dmabuf->resv);

	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);
	KUNIT_EXPECT_EQ(test, imp->exp->pins, 0);
	dma_buf_detach(dmabuf, attach);
}

static void test_pinned_dynamic_importer(struct kunit *test)
{
	static const struct dma_buf_range span[] = { { 0x10000, SZ_64K } };
	struct mock_import *imp = mock_setup(test, &ranges_only_ops, span, 1);
	struct dma_buf_attachment *attach = attach_dynamic(imp);
	struct dma_buf_ranges *ranges;

	dma_resv_lock(imp->dmabuf->resv, NULL);
	KUNIT_ASSERT_EQ(test, dma_buf_pin(attach), 0);
	ranges = dma_buf_map_ranges(attach, DMA_FROM_DEVICE);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, ranges);
	expect_ranges(test, ranges, span, 1);
	KUNIT_EXPECT_GE(test, imp->exp->pins, 1);
	dma_buf_unmap_ranges(attach, ranges, DMA_FROM_DEVICE);
	dma_buf_unpin(attach);
	dma_resv_unlock(imp->dmabuf->resv);
	KUNIT_EXPECT_EQ(test, imp->exp->pins, 0);
	KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);
	dma_buf_detach(imp->dmabuf, attach);
}

/*
 * When importer and exporter differ in dynamic-ness, the core maps once at
 * attach time; range requests are served from that mapping.
 */
static void test_cached_mapping(struct kunit *test)
{
	static const struct dma_buf_range spans[] = {
		{ 0x10000, SZ_64K }, { 0x90000, SZ_128K },
	};
	const struct dma_buf_ops *ops[] = {
		&ranges_only_ops, &static_ranges_ops, &static_sgt_ops
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ops); i++) {
		struct mock_import *imp = mock_setup(test, ops[i], spans, 2);
		struct dma_buf_attachment *attach;
		struct dma_buf_ranges *a, *b;
		bool dynamic_exporter = ops[i]->pin;

		if (dynamic_exporter)
			attach = dma_buf_attach(imp->dmabuf, imp->dev);
		else
			attach = attach_dynamic(imp);
		KUNIT_ASSERT_NOT_ERR_OR_NULL(test, attach);
		KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 1);
		KUNIT_EXPECT_EQ(test, imp->exp->pins, dynamic_exporter ? 1 : 0);

		dma_resv_lock(imp->dmabuf->resv, NULL);
		a = dma_buf_map_ranges(attach, DMA_BIDIRECTIONAL);
		KUNIT_ASSERT_NOT_ERR_OR_NULL(test, a);
		b = dma_buf_map_ranges(attach, DMA_TO_DEVICE);
		KUNIT_EXPECT_PTR_EQ(test, a, b);
		expect_ranges(test, a, spans, 2);
		dma_buf_unmap_ranges(attach, b, DMA_TO_DEVICE);
		dma_buf_unmap_ranges(attach, a, DMA_BIDIRECTIONAL);
		dma_resv_unlock(imp->dmabuf->resv);

		/* The cached mapping lives until detach, then goes back. */
		KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 1);
		KUNIT_EXPECT_EQ(test, imp->exp->range_maps + imp->exp->sgt_maps, 1);
		dma_buf_detach(imp->dmabuf, attach);
		KUNIT_EXPECT_EQ(test, imp->exp->live_maps, 0);
		KUNIT_EXPECT_EQ(test, imp->exp->pins, 0);
	}
}

static struct kunit_case dma_buf_ranges_cases[] = {
	KUNIT_CASE(test_one_range),
	KUNIT_CASE(test_many_ranges),
	KUNIT_CASE(test_range_over_4g),
	KUNIT_CASE(test_sgt_split_default_max_seg),
	KUNIT_CASE(test_sgt_split_boundary),
	KUNIT_CASE(test_sgt_split_large),
	KUNIT_CASE(test_sgt_debug_mangling),
	KUNIT_CASE(test_coalesce_sgt_entries),
	KUNIT_CASE(test_both_ops_use_native),
	KUNIT_CASE(test_invalid_lists_rejected),
	KUNIT_CASE(test_exporter_error_propagated),
	KUNIT_CASE(test_revoked_gives_enodev),
	KUNIT_CASE(test_pinned_dynamic_importer),
	KUNIT_CASE(test_cached_mapping),
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
