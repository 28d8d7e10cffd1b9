// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for umems backed by DMA ranges (dma-buf umems): the best page
 * size and the DMA blocks a driver sees must be exactly what the same
 * layout gives as an sg_table, and large contiguous ranges must give large
 * blocks.
 */
#include <kunit/test.h>
#include <linux/dma-buf-ranges.h>
#include <linux/scatterlist.h>
#include <linux/sizes.h>
#include <rdma/ib_umem.h>
#include <rdma/iter.h>

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
	KUNIT_EXPECT_EQ(test, ib_umem_is_contiguous(r), ib_umem_is_contiguous(s));
	KUNIT_EXPECT_EQ(test, ib_umem_find_best_pgoff(r, BITMAP_4K_2M_1G, 0xfff),
			ib_umem_find_best_pgoff(s, BITMAP_4K_2M_1G, 0xfff));
}

/* A 1 GiB aligned slice is one block where PAGE_SIZE blocks need 262,144. */
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
	KUNIT_EXPECT_EQ(test, ib_umem_num_dma_blocks(r, PAGE_SIZE), 262144);
	KUNIT_EXPECT_TRUE(test, ib_umem_is_contiguous(r));
	kunit_info(test, "1 GiB aligned slice: %zu block of %#lx, %zu blocks of PAGE_SIZE\n",
		   nr, pgsz, ib_umem_num_dma_blocks(r, PAGE_SIZE));
}

static void test_gap_is_not_contiguous(struct kunit *test)
{
	static const struct layout l = {
		"gap", { { 0x40000000, SZ_1M }, { 0x40200000, SZ_1M } },
		2, 0, SZ_2M, 0
	};

	KUNIT_EXPECT_FALSE(test, ib_umem_is_contiguous(range_umem(test, &l)));
	KUNIT_EXPECT_EQ(test, ib_umem_find_best_pgsz(range_umem(test, &l),
						     BITMAP_4K_2M_1G, 0), SZ_4K);
}

static struct kunit_case ib_umem_ranges_cases[] = {
	KUNIT_CASE_PARAM(test_same_as_sg_table, layout_gen_params),
	KUNIT_CASE(test_1g_slice_is_one_block),
	KUNIT_CASE(test_gap_is_not_contiguous),
	{}
};

static struct kunit_suite ib_umem_ranges_suite = {
	.name = "ib-umem-ranges",
	.test_cases = ib_umem_ranges_cases,
};

kunit_test_suite(ib_umem_ranges_suite);

MODULE_DESCRIPTION("KUnit tests for range-backed RDMA umems");
MODULE_LICENSE("GPL");
