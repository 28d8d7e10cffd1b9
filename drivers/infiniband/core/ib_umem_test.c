// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for umems backed by DMA ranges (dma-buf umems): the best page
 * size and the DMA blocks a driver sees must be exactly what the same
 * layout gives as an sg_table, and large contiguous ranges must give large
 * blocks.  Through a mock range exporter: the umem's view of a mapping
 * must give every byte of the MR the DMA address the exporter's list
 * gives it, and each remap must get the best page size its own layout
 * allows, as a driver loading it (mlx5) asks for on every remap.
 */
#include <kunit/device.h>
#include <kunit/test.h>
#include <linux/dma-buf.h>
#include <linux/dma-buf-ranges.h>
#include <linux/dma-resv.h>
#include <linux/scatterlist.h>
#include <linux/sizes.h>
#include <rdma/ib_umem.h>
#include <rdma/iter.h>

MODULE_IMPORT_NS(DMA_BUF);
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);

#define BITMAP_4K_2M_1G	(SZ_4K | SZ_2M | SZ_1G)

struct layout {
	const char *name;
	struct dma_buf_range ranges[4];
	unsigned int nr;
	unsigned long address;	/* only its offset in the page matters */
	size_t length;
	u64 iova;
};

/* A range-backed umem with @l's ranges. */
static struct ib_umem *range_umem(struct kunit *test, const struct layout *l)
{
	struct ib_umem *umem = kunit_kzalloc(test, sizeof(*umem), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, umem);
	umem->dma_ranges = kunit_kmalloc_array(test, l->nr, sizeof(l->ranges[0]),
					       GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, umem->dma_ranges);
	memcpy(umem->dma_ranges, l->ranges, l->nr * sizeof(l->ranges[0]));
	umem->nr_dma_ranges = l->nr;
	umem->address = l->address;
	umem->length = l->length;
	umem->is_dmabuf = 1;
	return umem;
}

static void free_sgt(void *sgt)
{
	sg_free_table(sgt);
}

/* The same layout as an sg_table, split every 2 GiB as sg_dma_len forces. */
static struct ib_umem *sg_umem(struct kunit *test, const struct layout *l)
{
	struct ib_umem *umem = kunit_kzalloc(test, sizeof(*umem), GFP_KERNEL);
	struct sg_table *sgt;
	struct scatterlist *sg;
	unsigned int i, n = 0;

	KUNIT_ASSERT_NOT_NULL(test, umem);
	for (i = 0; i < l->nr; i++)
		n += DIV_ROUND_UP_ULL(l->ranges[i].len, SZ_2G);
	sgt = &umem->sgt_append.sgt;
	KUNIT_ASSERT_EQ(test, 0, sg_alloc_table(sgt, n, GFP_KERNEL));
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, free_sgt, sgt));

	sg = sgt->sgl;
	for (i = 0; i < l->nr; i++) {
		u64 off;

		for (off = 0; off < l->ranges[i].len; off += SZ_2G) {
			sg_dma_address(sg) = l->ranges[i].addr + off;
			sg_dma_len(sg) = min_t(u64, SZ_2G, l->ranges[i].len - off);
			sg = sg_next(sg);
		}
	}
	umem->address = l->address;
	umem->length = l->length;
	return umem;
}

/* Walk both umems' blocks at @pgsz in lockstep; they must be the same. */
static void expect_same_blocks(struct kunit *test, struct ib_umem *r,
			       struct ib_umem *s, unsigned long pgsz)
{
	struct ib_block_iter br, bs;
	size_t n = 0;
	bool more_r, more_s;

	__rdma_umem_block_iter_start(&br, r, pgsz);
	__rdma_umem_block_iter_start(&bs, s, pgsz);
	for (;;) {
		more_r = __rdma_umem_block_iter_next(&br);
		more_s = __rdma_umem_block_iter_next(&bs);
		KUNIT_ASSERT_EQ_MSG(test, more_r, more_s,
				    "block count differs at %zu, pgsz %#lx", n, pgsz);
		if (!more_r)
			break;
		KUNIT_ASSERT_EQ_MSG(test, rdma_block_iter_dma_address(&br),
				    rdma_block_iter_dma_address(&bs),
				    "block %zu at %#lx", n, pgsz);
		n++;
	}
	KUNIT_EXPECT_EQ(test, n, ib_umem_num_dma_blocks(r, pgsz));
}

static const struct layout layouts[] = {
	{ "one range", { { 0x10000000, SZ_8M } }, 1, 0, SZ_8M, 0x400000 },
	{ "many ranges with gaps",
	  { { 0x80000000, SZ_2M }, { 0x90200000, SZ_4M },
	    { 0xa0000000, SZ_64K }, { 0x7000, SZ_4K } },
	  4, 0, SZ_2M + SZ_4M + SZ_64K + SZ_4K, 0x7fe00000 },
	{ "unaligned first and last byte",
	  { { 0x10000000, SZ_1M }, { 0x20000000, SZ_1M } },
	  2, 0x1234, SZ_2M - 0x1234 - 0x800, 0x5234 },
	{ "offset into the first range",
	  { { 0x10003000, SZ_1M - 0x3000 }, { 0x10100000, SZ_2M } },
	  2, 0x10, SZ_1M - 0x3000 + SZ_2M - 0x10, 0x3010 },
#if defined(CONFIG_64BIT) && defined(CONFIG_ARCH_DMA_ADDR_T_64BIT)
	{ "ranges over 4 GiB",
	  { { 0x1000000000, 6ull * SZ_1G }, { 0x2000000000, 5ull * SZ_1G } },
	  2, 0, 11ull * SZ_1G, 0 },
#endif
	{ "contiguous ranges merge",
	  { { 0x40000000, SZ_1M }, { 0x40100000, SZ_1M } },
	  2, 0, SZ_2M, 0x200000 },
	{ "IOVA misaligned with DMA",
	  { { 0x40000000, SZ_4M } }, 1, 0, SZ_4M, 0x1000 },
};

static void layout_desc(const struct layout *l, char *desc)
{
	strscpy(desc, l->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(layout, layouts, layout_desc);

/* Ranges and sg_table agree on the page size and on every block. */
static void test_same_as_sg_table(struct kunit *test)
{
	/* Every size from 4 KiB up, as far as unsigned long goes. */
	static const unsigned long bitmaps[] = {
		SZ_4K, BITMAP_4K_2M_1G, SZ_4K | SZ_64K,
		(unsigned long)GENMASK_ULL(39, 12),
	};
	const struct layout *l = test->param_value;
	struct ib_umem *r = range_umem(test, l), *s = sg_umem(test, l);
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bitmaps); i++) {
		unsigned long pr = ib_umem_find_best_pgsz(r, bitmaps[i], l->iova);
		unsigned long ps = ib_umem_find_best_pgsz(s, bitmaps[i], l->iova);

		KUNIT_EXPECT_EQ_MSG(test, pr, ps, "bitmap %#lx", bitmaps[i]);
		if (pr && pr == ps)
			expect_same_blocks(test, r, s, pr);
	}
	expect_same_blocks(test, r, s, PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, ib_umem_start_dma_addr(r), ib_umem_start_dma_addr(s));
	KUNIT_EXPECT_EQ(test, ib_umem_find_best_pgoff(r, BITMAP_4K_2M_1G, 0xfff),
			ib_umem_find_best_pgoff(s, BITMAP_4K_2M_1G, 0xfff));
}

/* A 1 GiB aligned slice is one block where 4 KiB pages need 262,144. */
static void test_1g_slice_is_one_block(struct kunit *test)
{
	static const struct layout l = {
		"1 GiB", { { 0x40000000, SZ_1G } }, 1, 0, SZ_1G, 0x80000000
	};
	struct ib_umem *r = range_umem(test, &l);
	unsigned long pgsz = ib_umem_find_best_pgsz(r, BITMAP_4K_2M_1G, l.iova);
	struct ib_block_iter biter;
	size_t nr = 0;

	KUNIT_ASSERT_EQ(test, pgsz, SZ_1G);
	rdma_umem_for_each_dma_block(r, &biter, pgsz) {
		KUNIT_EXPECT_EQ(test, rdma_block_iter_dma_address(&biter), 0x40000000);
		nr++;
	}
	KUNIT_EXPECT_EQ(test, nr, 1);
	KUNIT_EXPECT_EQ(test, ib_umem_num_dma_blocks(r, PAGE_SIZE), SZ_1G / PAGE_SIZE);
	kunit_info(test, "1 GiB aligned slice: %zu block of %#lx, %zu blocks of PAGE_SIZE\n",
		   nr, pgsz, ib_umem_num_dma_blocks(r, PAGE_SIZE));
}

/* A gap between two 1 MiB ranges: no block can span it. */
static void test_gap_limits_page_size(struct kunit *test)
{
	static const struct layout l = {
		"gap", { { 0x40000000, SZ_1M }, { 0x40200000, SZ_1M } },
		2, 0, SZ_2M, 0
	};

	KUNIT_EXPECT_EQ(test, ib_umem_find_best_pgsz(range_umem(test, &l),
						     BITMAP_4K_2M_1G, 0), SZ_4K);
}

/*
 * A range exporter whose list the test changes between maps.  It lives
 * until the dma-buf's file is released, possibly after the case ends.
 */
struct mock_exporter {
	struct dma_buf_range spans[4];
	unsigned int nr;
	int maps;		/* mappings handed out, not yet returned */
};

static struct dma_buf_ranges *mock_map(struct dma_buf_attachment *attach,
				       enum dma_data_direction dir)
{
	struct mock_exporter *exp = attach->dmabuf->priv;
	struct dma_buf_ranges *ranges = dma_buf_ranges_alloc(exp->nr, GFP_KERNEL);

	if (!ranges)
		return ERR_PTR(-ENOMEM);
	memcpy(ranges->ranges, exp->spans, exp->nr * sizeof(exp->spans[0]));
	exp->maps++;
	return ranges;
}

static void mock_unmap(struct dma_buf_attachment *attach,
		       struct dma_buf_ranges *ranges,
		       enum dma_data_direction dir)
{
	struct mock_exporter *exp = attach->dmabuf->priv;

	exp->maps--;
	dma_buf_ranges_free(ranges);
}

static int mock_pin(struct dma_buf_attachment *attach)
{
	return 0;
}

static void mock_unpin(struct dma_buf_attachment *attach)
{
}

static void mock_release(struct dma_buf *dmabuf)
{
	kfree(dmabuf->priv);
}

static const struct dma_buf_ops mock_ops = {
	.map_dma_ranges = mock_map,
	.unmap_dma_ranges = mock_unmap,
	.pin = mock_pin,
	.unpin = mock_unpin,
	.release = mock_release,
};

/* What an RDMA driver's move_notify does: unmap, map again on fault. */
static void umem_move_notify(struct dma_buf_attachment *attach)
{
	ib_umem_dmabuf_unmap_pages(attach->importer_priv);
}

static const struct dma_buf_attach_ops umem_attach_ops = {
	.allow_peer2peer = true,
	.map_types = BIT(DMA_BUF_MAP_RANGES),
	.move_notify = umem_move_notify,
};

static void release_umem(void *umem)
{
	ib_umem_release(umem);
}

/*
 * A dynamic umem of [@address, @address + @length) of @dmabuf, attached
 * for @dev as ib_umem_dmabuf_get() does, without an fd; it takes over the
 * dma-buf reference and is released when the case ends.
 */
static struct ib_umem_dmabuf *attach_umem(struct kunit *test,
					  struct device *dev,
					  struct dma_buf *dmabuf,
					  unsigned long address, size_t length)
{
	struct dma_buf_attachment *attach;
	struct ib_umem_dmabuf *umem_dmabuf;

	umem_dmabuf = kzalloc(sizeof(*umem_dmabuf), GFP_KERNEL);
	if (!umem_dmabuf)
		dma_buf_put(dmabuf);
	KUNIT_ASSERT_NOT_NULL(test, umem_dmabuf);
	umem_dmabuf->umem.address = address;
	umem_dmabuf->umem.length = length;
	umem_dmabuf->umem.is_dmabuf = 1;
	attach = dma_buf_dynamic_attach(dmabuf, dev, &umem_attach_ops,
					umem_dmabuf);
	if (IS_ERR(attach)) {
		kfree(umem_dmabuf);
		dma_buf_put(dmabuf);
	}
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, attach);
	umem_dmabuf->attach = attach;
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, release_umem,
							   &umem_dmabuf->umem));
	return umem_dmabuf;
}

/*
 * A dynamic dma-buf umem of [@address, @address + @length) of a dma-buf
 * of @size bytes, attached for @dev as ib_umem_dmabuf_get() does, without
 * an fd; released when the case ends.
 */
static struct ib_umem_dmabuf *mock_umem(struct kunit *test, struct device *dev,
					struct mock_exporter **expp,
					size_t size, unsigned long address,
					size_t length)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct mock_exporter *exp;
	struct dma_buf *dmabuf;

	exp = kzalloc(sizeof(*exp), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, exp);
	info.ops = &mock_ops;
	info.size = size;
	info.priv = exp;
	dmabuf = dma_buf_export(&info);
	if (IS_ERR(dmabuf))
		kfree(exp);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, dmabuf);

	*expp = exp;
	return attach_umem(test, dev, dmabuf, address, length);
}

static struct device *importer_device(struct kunit *test)
{
	struct device *dev = kunit_device_register(test, "ib_umem_test");

	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, dev);
	return dev;
}

static int map_umem(struct ib_umem_dmabuf *umem_dmabuf)
{
	struct dma_resv *resv = umem_dmabuf->attach->dmabuf->resv;
	int ret;

	dma_resv_lock(resv, NULL);
	ret = ib_umem_dmabuf_map_pages(umem_dmabuf);
	dma_resv_unlock(resv);
	return ret;
}

static void unmap_umem(struct ib_umem_dmabuf *umem_dmabuf)
{
	struct dma_resv *resv = umem_dmabuf->attach->dmabuf->resv;

	dma_resv_lock(resv, NULL);
	ib_umem_dmabuf_unmap_pages(umem_dmabuf);
	dma_resv_unlock(resv);
}

/* The DMA address of byte @off of the memory that @nr ranges describe. */
static dma_addr_t range_dma(const struct dma_buf_range *r, unsigned int nr,
			    u64 off)
{
	for (; nr; off -= r->len, r++, nr--)
		if (off < r->len)
			return r->addr + off;
	return DMA_MAPPING_ERROR;
}

/* The oracle: the DMA address of dma-buf byte @off, from the exporter's list. */
static dma_addr_t exporter_dma(const struct mock_exporter *exp, u64 off)
{
	return range_dma(exp->spans, exp->nr, off);
}

/* What the umem's view says for byte @pos of its first page onwards. */
static dma_addr_t view_dma(const struct ib_umem *umem, u64 pos)
{
	return range_dma(umem->dma_ranges, umem->nr_dma_ranges, pos);
}

/*
 * Three spans of 3, 1 and 5 pages, none contiguous with the next, and MRs
 * starting and ending all over them: the view must cover the MR's pages
 * exactly, each byte where the exporter's list puts it, and the
 * exporter's list must be left as it was handed out.
 */
static void test_view_matches_exporter(struct kunit *test)
{
	static const struct dma_buf_range spans[] = {
		{ 0x10000000, 3 * PAGE_SIZE }, { 0x20000000 + 5 * PAGE_SIZE, PAGE_SIZE },
		{ 0x30000000, 5 * PAGE_SIZE },
	};
	struct device *dev = importer_device(test);
	const u64 size = 9 * PAGE_SIZE;
	unsigned int cases = 0;
	u64 start, len;

	/* Steps that are no divisor of any page size: every offset mix. */
	for (start = 0; start < size; start += PAGE_SIZE / 2 - 1) {
		for (len = 1; start + len <= size; len += PAGE_SIZE * 3 / 4 - 1) {
			struct ib_umem_dmabuf *umem_dmabuf;
			struct mock_exporter *exp;
			u64 first = ALIGN_DOWN(start, PAGE_SIZE), pos, span;
			struct ib_umem *umem;

			umem_dmabuf = mock_umem(test, dev, &exp, size, start, len);
			memcpy(exp->spans, spans, sizeof(spans));
			exp->nr = ARRAY_SIZE(spans);
			KUNIT_ASSERT_EQ(test, 0, map_umem(umem_dmabuf));
			umem = &umem_dmabuf->umem;
			/* Four bytes a page, and the last. */
			span = ALIGN(start + len, PAGE_SIZE) - first;
			for (pos = 0; pos < span;
			     pos = pos + 1 < span ?
				   min(pos + PAGE_SIZE / 4 - 1, span - 1) : span)
				KUNIT_ASSERT_EQ_MSG(test, view_dma(umem, pos),
						    exporter_dma(exp, first + pos),
						    "MR [%#llx, +%#llx) byte %#llx of its pages",
						    start, len, pos);
			KUNIT_EXPECT_EQ(test, view_dma(umem, span),
					DMA_MAPPING_ERROR);
			KUNIT_EXPECT_MEMEQ(test, umem_dmabuf->ranges->ranges,
					   spans, sizeof(spans));
			unmap_umem(umem_dmabuf);
			KUNIT_EXPECT_EQ(test, exp->maps, 0);
			KUNIT_EXPECT_NULL(test, umem->dma_ranges);
			kunit_release_action(test, release_umem, umem);
			cases++;
		}
	}
	kunit_info(test, "%u MRs checked against the exporter's list\n", cases);
}

/*
 * A map that fails (here the exporter's list is short of the dma-buf, which
 * the core refuses) leaves the umem unmapped and the exporter with nothing
 * handed out; the next good map works, with the longer list in the view.
 */
static void test_failed_map_leaves_nothing(struct kunit *test)
{
	struct ib_umem_dmabuf *umem_dmabuf;
	struct mock_exporter *exp;

	umem_dmabuf = mock_umem(test, importer_device(test), &exp,
				4 * PAGE_SIZE, PAGE_SIZE, 3 * PAGE_SIZE);
	exp->spans[0] = (struct dma_buf_range){ 0x10000000, 3 * PAGE_SIZE };
	exp->nr = 1;
	KUNIT_EXPECT_EQ(test, map_umem(umem_dmabuf), -EINVAL);
	KUNIT_EXPECT_EQ(test, exp->maps, 0);
	KUNIT_EXPECT_NULL(test, umem_dmabuf->ranges);
	KUNIT_EXPECT_NULL(test, umem_dmabuf->umem.dma_ranges);

	exp->spans[1] = (struct dma_buf_range){ 0x20000000, PAGE_SIZE };
	exp->nr = 2;
	KUNIT_ASSERT_EQ(test, map_umem(umem_dmabuf), 0);
	KUNIT_EXPECT_EQ(test, umem_dmabuf->umem.nr_dma_ranges, 2);
	KUNIT_EXPECT_EQ(test, view_dma(&umem_dmabuf->umem, 0),
			0x10000000 + PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, view_dma(&umem_dmabuf->umem, 2 * PAGE_SIZE),
			0x20000000);
}

/* Move the exporter's memory to @spans: notify, then map again. */
static int remap(struct ib_umem_dmabuf *umem_dmabuf, struct mock_exporter *exp,
		 const struct dma_buf_range *spans, unsigned int nr)
{
	struct dma_resv *resv = umem_dmabuf->attach->dmabuf->resv;
	int ret;

	dma_resv_lock(resv, NULL);
	dma_buf_move_notify(umem_dmabuf->attach->dmabuf);
	memcpy(exp->spans, spans, nr * sizeof(*spans));
	exp->nr = nr;
	ret = ib_umem_dmabuf_map_pages(umem_dmabuf);
	dma_resv_unlock(resv);
	return ret;
}

#define REG_IOVA	0x600000

/* What a driver asks after each map, under the lock as on its fault path. */
static unsigned long best_pgsz(struct ib_umem_dmabuf *umem_dmabuf,
			       unsigned long bitmap)
{
	struct dma_resv *resv = umem_dmabuf->attach->dmabuf->resv;
	unsigned long ret;

	dma_resv_lock(resv, NULL);
	ret = ib_umem_find_best_pgsz(&umem_dmabuf->umem, bitmap, REG_IOVA);
	dma_resv_unlock(resv);
	return ret;
}

/*
 * The MR's IOVA (6 MiB) agrees with the first list's DMA addresses to
 * 2 MiB.  The exporter moves the memory: to a place that agrees with the
 * IOVA to 4 MiB (4 MiB blocks: a remap may grow the page size), to one
 * aligned only to a page (down to pages), and to two 2 MiB pieces (2 MiB
 * again).  mlx5 asks for any size from a page up; a driver whose table has
 * one page size asks for that one only, and 0 tells it the remap does not
 * fit.  Remaps of as many ranges reuse the view's buffer.
 */
static void test_remap_best_pgsz(struct kunit *test)
{
	static const struct dma_buf_range aligned[] = { { 0x40000000, SZ_4M } };
	static const struct dma_buf_range moved[] = { { 0x80200000, SZ_4M } };
	static const struct dma_buf_range skewed[] = {
		{ 0x40000000 + PAGE_SIZE, SZ_4M }
	};
	static const struct dma_buf_range split[] = {
		{ 0x90000000, SZ_2M }, { 0x50200000, SZ_2M },
	};
	const unsigned long any = GENMASK(30, PAGE_SHIFT);
	struct ib_umem_dmabuf *umem_dmabuf;
	struct dma_buf_range *view;
	struct mock_exporter *exp;
	struct ib_umem *umem;

	if (PAGE_SIZE >= SZ_2M)
		kunit_skip(test, "needs pages smaller than 2 MiB");
	umem_dmabuf = mock_umem(test, importer_device(test), &exp, SZ_4M, 0,
				SZ_4M);
	umem = &umem_dmabuf->umem;
	memcpy(exp->spans, aligned, sizeof(aligned));
	exp->nr = 1;
	KUNIT_ASSERT_EQ(test, map_umem(umem_dmabuf), 0);
	KUNIT_EXPECT_EQ(test, best_pgsz(umem_dmabuf, any), SZ_2M);
	view = umem->dma_ranges;

	KUNIT_ASSERT_EQ(test, remap(umem_dmabuf, exp, moved, 1), 0);
	KUNIT_EXPECT_EQ(test, best_pgsz(umem_dmabuf, any), SZ_4M);
	KUNIT_EXPECT_EQ(test, best_pgsz(umem_dmabuf, SZ_2M), SZ_2M);
	KUNIT_EXPECT_PTR_EQ(test, umem->dma_ranges, view);

	KUNIT_ASSERT_EQ(test, remap(umem_dmabuf, exp, skewed, 1), 0);
	KUNIT_EXPECT_EQ(test, best_pgsz(umem_dmabuf, any), PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, best_pgsz(umem_dmabuf, SZ_2M), 0);
	KUNIT_EXPECT_PTR_EQ(test, umem->dma_ranges, view);

	KUNIT_ASSERT_EQ(test, remap(umem_dmabuf, exp, split, 2), 0);
	KUNIT_EXPECT_EQ(test, best_pgsz(umem_dmabuf, any), SZ_2M);
	KUNIT_EXPECT_EQ(test, umem->nr_dma_ranges, 2);
	KUNIT_EXPECT_EQ(test, exp->maps, 1);
}

/*
 * The umem maps whole pages, so registration refuses an MR whose last page
 * runs past the dma-buf.
 */
static void test_mr_pages_must_be_in_dmabuf(struct kunit *test)
{
	const size_t p = PAGE_SIZE;

	KUNIT_EXPECT_TRUE(test, ib_umem_dmabuf_pages_in_buf(4 * p, 4 * p));
	KUNIT_EXPECT_TRUE(test, ib_umem_dmabuf_pages_in_buf(4 * p, 3 * p + 1));
	KUNIT_EXPECT_FALSE(test, ib_umem_dmabuf_pages_in_buf(4 * p, 4 * p + 1));
	/* A dma-buf that is no page multiple owns the page of its last byte. */
	KUNIT_EXPECT_TRUE(test, ib_umem_dmabuf_pages_in_buf(4 * p + 100, 4 * p));
	KUNIT_EXPECT_TRUE(test, ib_umem_dmabuf_pages_in_buf(4 * p + 100, 4 * p + 1));
	KUNIT_EXPECT_TRUE(test, ib_umem_dmabuf_pages_in_buf(4 * p + 100, 4 * p + 100));
	KUNIT_EXPECT_FALSE(test, ib_umem_dmabuf_pages_in_buf(4 * p + 100, 4 * p + 101));
	/* vfio's page of a sub-page BAR: a page-sized dma-buf. */
	KUNIT_EXPECT_TRUE(test, ib_umem_dmabuf_pages_in_buf(p, 256));
	/* The page holding the last byte of the address space wraps. */
	KUNIT_EXPECT_FALSE(test, ib_umem_dmabuf_pages_in_buf(SIZE_MAX, ULONG_MAX));
	KUNIT_EXPECT_TRUE(test, ib_umem_dmabuf_pages_in_buf(SIZE_MAX & PAGE_MASK,
							    ULONG_MAX & PAGE_MASK));
}

/*
 * A static sg_table exporter of a buffer that is no page multiple, as
 * fastrpc's: its one entry is the page dma_get_sgtable() gives for it.
 */
#define SUB_PAGE_SIZE	(PAGE_SIZE - 512)
#define SUB_PAGE_DMA	0x40000000

static struct sg_table *sub_page_map(struct dma_buf_attachment *attach,
				     enum dma_data_direction dir)
{
	struct sg_table *sgt = kzalloc(sizeof(*sgt), GFP_KERNEL);

	if (!sgt || sg_alloc_table(sgt, 1, GFP_KERNEL)) {
		kfree(sgt);
		return ERR_PTR(-ENOMEM);
	}
	sg_dma_address(sgt->sgl) = SUB_PAGE_DMA;
	sg_dma_len(sgt->sgl) = PAGE_SIZE;
	return sgt;
}

static void sub_page_unmap(struct dma_buf_attachment *attach,
			   struct sg_table *sgt, enum dma_data_direction dir)
{
	sg_free_table(sgt);
	kfree(sgt);
}

static void sub_page_release(struct dma_buf *dmabuf)
{
}

static const struct dma_buf_ops sub_page_ops = {
	.map_dma_buf = sub_page_map,
	.unmap_dma_buf = sub_page_unmap,
	.release = sub_page_release,
};

/*
 * An MR of the whole of such a buffer registers and maps as on 6.12: one
 * page, at the entry's address.
 */
static void test_sub_page_sg_exporter(struct kunit *test)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct device *dev = importer_device(test);
	struct ib_umem_dmabuf *umem_dmabuf;
	struct dma_buf *dmabuf;
	struct ib_umem *umem;

	KUNIT_EXPECT_TRUE(test, ib_umem_dmabuf_pages_in_buf(SUB_PAGE_SIZE,
							    SUB_PAGE_SIZE));
	info.ops = &sub_page_ops;
	info.size = SUB_PAGE_SIZE;
	info.priv = test;
	dmabuf = dma_buf_export(&info);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, dmabuf);
	/* A dynamic importer of a static exporter: mapped at attach. */
	umem_dmabuf = attach_umem(test, dev, dmabuf, 0, SUB_PAGE_SIZE);
	umem = &umem_dmabuf->umem;

	KUNIT_ASSERT_EQ(test, 0, map_umem(umem_dmabuf));
	KUNIT_ASSERT_EQ(test, umem->nr_dma_ranges, 1);
	KUNIT_EXPECT_EQ(test, umem->dma_ranges[0].addr, SUB_PAGE_DMA);
	KUNIT_EXPECT_EQ(test, umem->dma_ranges[0].len, PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, ib_umem_num_dma_blocks(umem, PAGE_SIZE), 1);
}

/* Unmap through move_notify, as the exporter's revoke reaches a dynamic umem. */
static void revoke_umem(struct ib_umem_dmabuf *umem_dmabuf)
{
	struct dma_resv *resv = umem_dmabuf->attach->dmabuf->resv;

	dma_resv_lock(resv, NULL);
	dma_buf_move_notify(umem_dmabuf->attach->dmabuf);
	dma_resv_unlock(resv);
}

/*
 * A dma-buf umem without a mapping (not yet mapped, unmapped, unmapped by
 * move_notify) has no DMA address, no page size and no block to give: a
 * driver that asks then gets nothing rather than an answer made from the
 * VA alone or from a NULL list.  Mapped, it answers again.  (A pinned
 * revocable umem's revoke leaves it unmapped the same way; the VM test
 * revokes one through vfio.)
 */
static void test_unmapped_umem_answers_nothing(struct kunit *test)
{
	const unsigned long any = GENMASK(30, PAGE_SHIFT);
	struct ib_umem_dmabuf *umem_dmabuf;
	struct mock_exporter *exp;
	struct ib_block_iter biter;
	struct ib_umem *umem;
	int round, blocks;

	if (PAGE_SIZE >= SZ_2M)
		kunit_skip(test, "needs pages smaller than 2 MiB");
	umem_dmabuf = mock_umem(test, importer_device(test), &exp, SZ_4M, 0,
				SZ_4M);
	umem = &umem_dmabuf->umem;
	exp->spans[0] = (struct dma_buf_range){ 0x40000000, SZ_4M };
	exp->nr = 1;
	for (round = 0; round < 3; round++) {
		KUNIT_EXPECT_EQ_MSG(test, best_pgsz(umem_dmabuf, any), 0,
				    "round %d", round);
		KUNIT_EXPECT_EQ(test, ib_umem_start_dma_addr(umem), 0);
		blocks = 0;
		rdma_umem_for_each_dma_block(umem, &biter, PAGE_SIZE)
			blocks++;
		KUNIT_EXPECT_EQ(test, blocks, 0);
		if (round == 2)
			break;

		KUNIT_ASSERT_EQ(test, map_umem(umem_dmabuf), 0);
		KUNIT_EXPECT_EQ(test, best_pgsz(umem_dmabuf, any), SZ_2M);
		KUNIT_EXPECT_EQ(test, ib_umem_start_dma_addr(umem), 0x40000000);
		blocks = 0;
		rdma_umem_for_each_dma_block(umem, &biter, SZ_2M)
			blocks++;
		KUNIT_EXPECT_EQ(test, blocks, 2);
		if (round)
			revoke_umem(umem_dmabuf);
		else
			unmap_umem(umem_dmabuf);
	}
	KUNIT_EXPECT_EQ(test, exp->maps, 0);
}

static struct kunit_case ib_umem_ranges_cases[] = {
	KUNIT_CASE_PARAM(test_same_as_sg_table, layout_gen_params),
	KUNIT_CASE(test_1g_slice_is_one_block),
	KUNIT_CASE(test_gap_limits_page_size),
	KUNIT_CASE(test_view_matches_exporter),
	KUNIT_CASE(test_failed_map_leaves_nothing),
	KUNIT_CASE(test_remap_best_pgsz),
	KUNIT_CASE(test_mr_pages_must_be_in_dmabuf),
	KUNIT_CASE(test_sub_page_sg_exporter),
	KUNIT_CASE(test_unmapped_umem_answers_nothing),
	{}
};

static struct kunit_suite ib_umem_ranges_suite = {
	.name = "ib-umem-ranges",
	.test_cases = ib_umem_ranges_cases,
};

kunit_test_suite(ib_umem_ranges_suite);

MODULE_DESCRIPTION("KUnit tests for range-backed RDMA umems");
MODULE_LICENSE("GPL");
