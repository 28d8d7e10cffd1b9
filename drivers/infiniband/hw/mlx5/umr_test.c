// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * KUnit tests for the UMR steps that load a dma-buf mkey.  A model of the
 * device stands in for the hardware: it holds the mkey's page size and,
 * per translation entry, the page size the entry was written for (or not
 * present).  After every step, each entry the device can reach at its
 * current page size must be not present or written for that size; at the
 * end the mkey must be at the new size with every entry loaded for it.
 */
#include <kunit/test.h>
#include <linux/sizes.h>

#include "umr.h"

MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);

#define MTT_ALIGN	MLX5_UMR_MTT_NUM_ENTRIES_ALIGNMENT
#define NOT_PRESENT	0
/* Written for a page size the test does not otherwise use. */
#define STALE		0xff

struct mkey_model {
	struct kunit *test;
	u64 iova;
	u64 length;
	unsigned int shift;	/* the page size the device reads at */
	size_t cap;		/* what a PAGE_SIZE load writes, in entries */
	u8 *ent;
};

static size_t nblocks(u64 iova, u64 length, unsigned int shift)
{
	u64 first = iova >> shift;
	u64 last = (iova + length - 1) >> shift;

	return last - first + 1;
}

static void free_ents(void *ent)
{
	kvfree(ent);
}

/* The table as a remap finds it: entries for dev_shift, stale beyond. */
static struct mkey_model *model_new(struct kunit *test, u64 iova, u64 length,
				    unsigned int dev_shift)
{
	struct mkey_model *m = kunit_kzalloc(test, sizeof(*m), GFP_KERNEL);
	size_t i, reached = nblocks(iova, length, dev_shift);

	KUNIT_ASSERT_NOT_NULL(test, m);
	m->test = test;
	m->iova = iova;
	m->length = length;
	m->shift = dev_shift;
	/*
	 * The mkey is created for PAGE_SIZE blocks, and a load at PAGE_SIZE
	 * writes them in whole UMR units: no step may write past that.
	 */
	m->cap = ALIGN(nblocks(iova, length, PAGE_SHIFT), MTT_ALIGN);
	m->ent = kvzalloc(m->cap, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, m->ent);
	KUNIT_ASSERT_EQ(test, kunit_add_action_or_reset(test, free_ents, m->ent),
			0);
	for (i = 0; i < m->cap; i++)
		m->ent[i] = i < reached ? dev_shift : STALE;
	return m;
}

static void model_free(struct mkey_model *m)
{
	kunit_release_action(m->test, free_ents, m->ent);
	kunit_kfree(m->test, m);
}

/* Every entry the device reaches is not present or meant for its size. */
static bool model_safe(struct mkey_model *m)
{
	size_t i, n = nblocks(m->iova, m->length, m->shift);

	for (i = 0; i < n; i++)
		if (m->ent[i] != NOT_PRESENT && m->ent[i] != m->shift)
			return false;
	return true;
}

/* Nothing the device reaches is present. */
static bool model_unreachable(struct mkey_model *m)
{
	size_t i, n = nblocks(m->iova, m->length, m->shift);

	for (i = 0; i < n; i++)
		if (m->ent[i] != NOT_PRESENT)
			return false;
	return true;
}

/* A UMR writes whole units: what it does not load in its last, it zeroes. */
static void model_write(struct mkey_model *m, size_t start, size_t nents,
			u8 val)
{
	size_t end = start + ALIGN(nents, MTT_ALIGN), i;

	KUNIT_EXPECT_EQ(m->test, start % MTT_ALIGN, 0);
	KUNIT_ASSERT_LE(m->test, end, m->cap);
	for (i = start; i < end; i++)
		m->ent[i] = i < start + nents ? val : NOT_PRESENT;
}

static void model_apply(struct mkey_model *m, const struct mlx5r_xlt_step *s,
			unsigned int new_shift, unsigned int max_shift)
{
	struct kunit *test = m->test;

	if (s->op == MLX5R_XLT_SET_PGSZ) {
		KUNIT_EXPECT_GE(test, s->shift, PAGE_SHIFT);
		KUNIT_EXPECT_LE(test, s->shift, max_shift);
		m->shift = s->shift;
		return;
	}
	/*
	 * Zaps and loads walk the mapping's blocks at the new size, the only
	 * one it is known to fit, so they stay within its block count.
	 */
	KUNIT_EXPECT_EQ(test, s->shift, new_shift);
	KUNIT_EXPECT_GT(test, s->nents, 0);
	KUNIT_EXPECT_LE(test, s->start + s->nents,
			nblocks(m->iova, m->length, new_shift));
	model_write(m, s->start, s->nents,
		    s->op == MLX5R_XLT_LOAD ? new_shift : NOT_PRESENT);
}

/*
 * Plan the load of a mapping at new_shift, the driver taking the device to
 * be at cur_shift (0: not known), and run it on the model; if fail_after
 * is below the number of steps, stop after that many.  Return the number
 * of steps planned.
 */
static unsigned int run_steps(struct mkey_model *m, unsigned int cur_shift,
			      unsigned int new_shift, unsigned int max_shift,
			      unsigned int fail_after)
{
	struct mlx5r_xlt_step steps[MLX5R_DMABUF_MAX_STEPS];
	struct kunit *test = m->test;
	unsigned int from = m->shift, n, k;
	size_t i, n_new;

	n = mlx5r_dmabuf_plan_xlt(steps, m->iova, m->length, cur_shift,
				  new_shift, max_shift, MTT_ALIGN);
	KUNIT_ASSERT_GE(test, n, 1);
	KUNIT_ASSERT_LE(test, n, MLX5R_DMABUF_MAX_STEPS);
	for (k = 0; k < n && k < fail_after; k++) {
		model_apply(m, &steps[k], new_shift, max_shift);
		KUNIT_EXPECT_TRUE_MSG(test, model_safe(m),
				      "iova %#llx length %#llx: %u -> %u (max %u), after step %u the device reads a wrong entry",
				      m->iova, m->length, from, new_shift,
				      max_shift, k);
	}
	if (k < n)
		return n;
	KUNIT_EXPECT_EQ(test, m->shift, new_shift);
	n_new = nblocks(m->iova, m->length, new_shift);
	for (i = 0; i < n_new; i++)
		if (m->ent[i] != new_shift)
			break;
	KUNIT_EXPECT_EQ_MSG(test, i, n_new,
			    "iova %#llx length %#llx: %u -> %u, entry %zu not loaded",
			    m->iova, m->length, from, new_shift, i);
	return n;
}

/* run_steps() to the end on a fresh model with the device at dev_shift. */
static unsigned int run_plan(struct kunit *test, u64 iova, u64 length,
			     unsigned int dev_shift, unsigned int cur_shift,
			     unsigned int new_shift, unsigned int max_shift)
{
	struct mkey_model *m = model_new(test, iova, length, dev_shift);
	unsigned int n;

	n = run_steps(m, cur_shift, new_shift, max_shift, UINT_MAX);
	model_free(m);
	return n;
}

/*
 * The first map: the mkey is free, so the driver takes the new size as the
 * current one and loads once, enabling the mkey with it.
 */
static void test_first_map_is_one_load(struct kunit *test)
{
	struct mlx5r_xlt_step steps[MLX5R_DMABUF_MAX_STEPS];

	KUNIT_ASSERT_EQ(test, mlx5r_dmabuf_plan_xlt(steps, 0, SZ_1G, 30, 30,
						    30, MTT_ALIGN), 1);
	KUNIT_EXPECT_EQ(test, steps[0].op, MLX5R_XLT_LOAD);
	KUNIT_EXPECT_EQ(test, steps[0].shift, 30);
	KUNIT_EXPECT_EQ(test, steps[0].start, 0);
	KUNIT_EXPECT_EQ(test, steps[0].nents, 1);
}

/* A remap the same size fits is one load, as before this series. */
static void test_remap_same_size_is_one_load(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, run_plan(test, SZ_2M, SZ_8M, 21, 21, 21, 30), 1);
	KUNIT_EXPECT_EQ(test, run_plan(test, 0, 5 * PAGE_SIZE, PAGE_SHIFT,
				       PAGE_SHIFT, PAGE_SHIFT, 30), 1);
}

/*
 * 2 MiB pages down to 4 KiB ones, worked by hand: 1024 entries; parked at
 * 4 MiB the MR is one block, so the first UMR unit (8 MTTs) is zapped.
 */
static void test_remap_smaller_steps(struct kunit *test)
{
	static const struct mlx5r_xlt_step want[] = {
		{ .op = MLX5R_XLT_ZAP, .shift = 12, .start = 0, .nents = 8 },
		{ .op = MLX5R_XLT_SET_PGSZ, .shift = 22 },
		{ .op = MLX5R_XLT_LOAD, .shift = 12, .start = 8, .nents = 1016 },
		{ .op = MLX5R_XLT_SET_PGSZ, .shift = 12 },
		{ .op = MLX5R_XLT_LOAD, .shift = 12, .start = 0, .nents = 8 },
	};
	struct mlx5r_xlt_step steps[MLX5R_DMABUF_MAX_STEPS];
	unsigned int k;

	if (PAGE_SHIFT != 12)
		kunit_skip(test, "worked for 4 KiB pages");
	KUNIT_ASSERT_EQ(test, mlx5r_dmabuf_plan_xlt(steps, 0, SZ_4M, 21, 12,
						    30, MTT_ALIGN),
			ARRAY_SIZE(want));
	for (k = 0; k < ARRAY_SIZE(want); k++) {
		KUNIT_EXPECT_EQ(test, steps[k].op, want[k].op);
		KUNIT_EXPECT_EQ(test, steps[k].shift, want[k].shift);
		KUNIT_EXPECT_EQ(test, steps[k].start, want[k].start);
		KUNIT_EXPECT_EQ(test, steps[k].nents, want[k].nents);
	}
	KUNIT_EXPECT_EQ(test, run_plan(test, 0, SZ_4M, 21, 21, 12, 30),
			ARRAY_SIZE(want));
}

/*
 * 4 KiB pages up to 2 MiB ones: two entries, inside the zapped unit, so
 * there is nothing to load before the new size is set.
 */
static void test_remap_bigger_steps(struct kunit *test)
{
	static const struct mlx5r_xlt_step want[] = {
		{ .op = MLX5R_XLT_ZAP, .shift = 21, .start = 0, .nents = 2 },
		{ .op = MLX5R_XLT_SET_PGSZ, .shift = 22 },
		{ .op = MLX5R_XLT_SET_PGSZ, .shift = 21 },
		{ .op = MLX5R_XLT_LOAD, .shift = 21, .start = 0, .nents = 2 },
	};
	struct mlx5r_xlt_step steps[MLX5R_DMABUF_MAX_STEPS];
	unsigned int k;

	KUNIT_ASSERT_EQ(test, mlx5r_dmabuf_plan_xlt(steps, 0, SZ_4M,
						    PAGE_SHIFT, 21, 30,
						    MTT_ALIGN),
			ARRAY_SIZE(want));
	for (k = 0; k < ARRAY_SIZE(want); k++) {
		KUNIT_EXPECT_EQ(test, steps[k].op, want[k].op);
		KUNIT_EXPECT_EQ(test, steps[k].shift, want[k].shift);
		KUNIT_EXPECT_EQ(test, steps[k].start, want[k].start);
		KUNIT_EXPECT_EQ(test, steps[k].nents, want[k].nents);
	}
}

/*
 * After a change failed part way the driver does not know the device's
 * page size: whatever it is, the next load changes it, also to the size
 * the driver last set.
 */
static void test_unknown_size_always_changes(struct kunit *test)
{
	if (PAGE_SHIFT != 12)
		kunit_skip(test, "sizes chosen for 4 KiB pages");
	KUNIT_EXPECT_EQ(test, run_plan(test, 0, SZ_8M, 21, 0, 12, 30), 5);
	KUNIT_EXPECT_EQ(test, run_plan(test, 0, SZ_8M, 12, 0, 21, 30), 4);
	KUNIT_EXPECT_GT(test, run_plan(test, 0, SZ_8M, 12, 0, 12, 30), 1);
	KUNIT_EXPECT_GT(test, run_plan(test, 0, SZ_8M, 21, 0, 21, 30), 1);
}

/* Every change between the sizes a device of max_shift takes, of one MR. */
static void change_every_size(struct kunit *test, u64 iova, u64 length,
			      unsigned int max_shift)
{
	static const unsigned int shifts[] = { 12, 13, 16, 21, 22, 30 };
	unsigned int a, b, from, to;

	for (a = 0; a < ARRAY_SIZE(shifts); a++) {
		for (b = 0; b < ARRAY_SIZE(shifts); b++) {
			from = shifts[a];
			to = shifts[b];
			if (from > max_shift || to > max_shift)
				continue;
			run_plan(test, iova, length, from, from, to, max_shift);
			run_plan(test, iova, length, from, 0, to, max_shift);
		}
	}
}

/*
 * Every change, for MRs of a page to 18 MiB starting on and off large
 * boundaries, with a device that can take 2 MiB pages (so that longer MRs
 * park at several blocks) or 1 GiB ones: the device never reads a wrong
 * entry.
 */
static void test_every_change_is_safe(struct kunit *test)
{
	static const u64 lengths[] = {
		SZ_4K, 5 * SZ_4K, SZ_2M, SZ_2M + SZ_4K, SZ_8M - SZ_4K,
		SZ_16M + SZ_2M,
	};
	static const u64 iovas[] = { 0, SZ_4K, SZ_2M - SZ_4K, SZ_1G + SZ_8M };
	unsigned int l, v;

	if (PAGE_SHIFT != 12)
		kunit_skip(test, "sizes chosen for 4 KiB pages");
	for (l = 0; l < ARRAY_SIZE(lengths); l++) {
		for (v = 0; v < ARRAY_SIZE(iovas); v++) {
			change_every_size(test, iovas[v], lengths[l], 21);
			change_every_size(test, iovas[v], lengths[l], 30);
		}
	}
}

/*
 * A change fails after any number of its steps took effect (the failing
 * UMR's own effect unknown): the device is at the old size, the parking
 * one or the new one.  The zap of the next move_notify, at the page size
 * the driver keeps for a failed change, must leave nothing the device can
 * reach present; and the next load, after that zap or with no move_notify
 * between (the same mapping), must be safe with the size not known.
 */
static void fail_every_step(struct kunit *test, u64 iova, u64 length,
			    unsigned int from, unsigned int to)
{
	struct mlx5r_xlt_step steps[MLX5R_DMABUF_MAX_STEPS];
	unsigned int n, done, zap_shift, zap;
	struct mkey_model *m;

	n = mlx5r_dmabuf_plan_xlt(steps, iova, length, from, to, 30, MTT_ALIGN);
	zap_shift = mlx5r_dmabuf_failed_shift(from, to);
	for (done = 0; done < n; done++) {
		for (zap = 0; zap < 2; zap++) {
			m = model_new(test, iova, length, from);
			run_steps(m, from, to, 30, done);
			if (zap) {
				model_write(m, 0,
					    nblocks(iova, length, zap_shift),
					    NOT_PRESENT);
				KUNIT_EXPECT_TRUE_MSG(test, model_unreachable(m),
						      "%u -> %u failed after %u steps: the device reaches a present entry after move_notify",
						      from, to, done);
			}
			run_steps(m, 0, to, 30, UINT_MAX);
			model_free(m);
		}
	}
}

static void test_failed_change_is_covered(struct kunit *test)
{
	static const unsigned int shifts[] = { 12, 16, 21, 30 };
	static const u64 lengths[] = { 5 * SZ_4K, SZ_2M + SZ_4K, SZ_16M };
	unsigned int a, b, l;

	if (PAGE_SHIFT != 12)
		kunit_skip(test, "sizes chosen for 4 KiB pages");
	for (l = 0; l < ARRAY_SIZE(lengths); l++)
		for (a = 0; a < ARRAY_SIZE(shifts); a++)
			for (b = 0; b < ARRAY_SIZE(shifts); b++)
				if (shifts[a] != shifts[b])
					fail_every_step(test, SZ_4K, lengths[l],
							shifts[a], shifts[b]);
}

/*
 * A 1 GiB MR between 4 KiB and 1 GiB pages, both ways.  Up, it parks at
 * the new size itself, so there is no second size to set.
 */
static void test_1g_mr_changes(struct kunit *test)
{
	if (PAGE_SHIFT != 12)
		kunit_skip(test, "sizes chosen for 4 KiB pages");
	KUNIT_EXPECT_EQ(test, run_plan(test, SZ_1G, SZ_1G, 12, 12, 30, 30), 3);
	KUNIT_EXPECT_EQ(test, run_plan(test, SZ_1G, SZ_1G, 30, 30, 12, 30), 5);
}

/* What the device reports, within what a UMR can write to log_page_size. */
static void test_log_pgsz_limit(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, mlx5r_log_pgsz_limit(21, false), 21);
	KUNIT_EXPECT_EQ(test, mlx5r_log_pgsz_limit(31, false), 31);
	/* Not reported: 31, even where a UMR could write more. */
	KUNIT_EXPECT_EQ(test, mlx5r_log_pgsz_limit(0, false), 31);
	KUNIT_EXPECT_EQ(test, mlx5r_log_pgsz_limit(0, true), 31);
	/* More than 31 only where a UMR can write log_page_size's bit 5. */
	KUNIT_EXPECT_EQ(test, mlx5r_log_pgsz_limit(40, false), 31);
	KUNIT_EXPECT_EQ(test, mlx5r_log_pgsz_limit(40, true),
			min(40, BITS_PER_LONG - 1));
}

static struct kunit_case mlx5_umr_dmabuf_cases[] = {
	KUNIT_CASE(test_first_map_is_one_load),
	KUNIT_CASE(test_remap_same_size_is_one_load),
	KUNIT_CASE(test_remap_smaller_steps),
	KUNIT_CASE(test_remap_bigger_steps),
	KUNIT_CASE(test_unknown_size_always_changes),
	KUNIT_CASE(test_every_change_is_safe),
	KUNIT_CASE(test_failed_change_is_covered),
	KUNIT_CASE(test_1g_mr_changes),
	KUNIT_CASE(test_log_pgsz_limit),
	{}
};

static struct kunit_suite mlx5_umr_dmabuf_suite = {
	.name = "mlx5-umr-dmabuf",
	.test_cases = mlx5_umr_dmabuf_cases,
};

kunit_test_suite(mlx5_umr_dmabuf_suite);

MODULE_DESCRIPTION("KUnit tests for the UMRs that load mlx5 dma-buf mkeys");
MODULE_LICENSE("Dual BSD/GPL");
