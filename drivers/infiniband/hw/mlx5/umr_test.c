// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * KUnit tests for the UMR steps that load a dma-buf mkey.  A model of the
 * device stands in for the hardware: it holds the mkey's page size and,
 * per translation entry, the page size the entry was written for (or not
 * present).  After every step, each entry the device can reach at its
 * current page size must be not present or written for that size; at the
 * end the mkey must be at the new size with every entry loaded for it.
 * The driver's side (the page size it records, and whether it knows the
 * device's) goes through the same helpers as mlx5r_umr_update_dmabuf_xlt().
 */
#include <kunit/static_stub.h>
#include <kunit/test.h>
#include <linux/kthread.h>
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

/* What the driver records: mr->page_shift and mr->dmabuf_pgsz_unknown. */
struct driver_state {
	unsigned int shift;
	bool unknown;
};

/*
 * A load of the mapping at new_shift, as the driver plans it from its
 * state; only the first done steps take effect on the model, and err is
 * what the load returns to the driver (0: done is all of them).  Return the
 * number of steps planned.
 */
static unsigned int load(struct mkey_model *m, struct driver_state *d,
			 unsigned int new_shift, unsigned int max_shift,
			 unsigned int done, int err)
{
	struct mlx5r_xlt_step steps[MLX5R_DMABUF_MAX_STEPS];
	struct kunit *test = m->test;
	unsigned int from = m->shift, n, k;
	size_t i, n_new;

	n = mlx5r_dmabuf_plan_xlt(steps, m->iova, m->length, d->shift,
				  d->unknown, new_shift, max_shift, MTT_ALIGN);
	KUNIT_ASSERT_GE(test, n, 1);
	KUNIT_ASSERT_LE(test, n, MLX5R_DMABUF_MAX_STEPS);
	for (k = 0; k < n && k < done; k++) {
		model_apply(m, &steps[k], new_shift, max_shift);
		KUNIT_EXPECT_TRUE_MSG(test, model_safe(m),
				      "iova %#llx length %#llx: %u -> %u (max %u), after step %u the device reads a wrong entry",
				      m->iova, m->length, from, new_shift,
				      max_shift, k);
	}
	mlx5r_dmabuf_load_done(&d->shift, &d->unknown, new_shift, n, err);
	if (err)
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

/*
 * move_notify zaps at the page size the driver records (as
 * mlx5r_umr_update_mr_pas() counts them, without walking the mapping),
 * then unmaps: nothing the device reaches may be present.
 */
static void move_notify(struct mkey_model *m, struct driver_state *d)
{
	model_write(m, 0, nblocks(m->iova, m->length, d->shift), NOT_PRESENT);
	KUNIT_EXPECT_TRUE_MSG(m->test, model_unreachable(m),
			      "iova %#llx length %#llx: the device at %u reaches a present entry after a zap at %u",
			      m->iova, m->length, m->shift, d->shift);
}

/*
 * A successful load on a fresh model with the device at dev_shift, which
 * the driver knows unless unknown.  Return the number of steps.
 */
static unsigned int run_plan(struct kunit *test, u64 iova, u64 length,
			     unsigned int dev_shift, bool unknown,
			     unsigned int new_shift, unsigned int max_shift)
{
	struct mkey_model *m = model_new(test, iova, length, dev_shift);
	struct driver_state d = { .shift = dev_shift, .unknown = unknown };
	unsigned int n;

	n = load(m, &d, new_shift, max_shift, UINT_MAX, 0);
	KUNIT_EXPECT_EQ(test, d.shift, new_shift);
	KUNIT_EXPECT_FALSE(test, d.unknown);
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

	KUNIT_ASSERT_EQ(test, mlx5r_dmabuf_plan_xlt(steps, 0, SZ_1G, 30, false,
						    30, 30, MTT_ALIGN), 1);
	KUNIT_EXPECT_EQ(test, steps[0].op, MLX5R_XLT_LOAD);
	KUNIT_EXPECT_EQ(test, steps[0].shift, 30);
	KUNIT_EXPECT_EQ(test, steps[0].start, 0);
	KUNIT_EXPECT_EQ(test, steps[0].nents, 1);
}

/* A remap the same size fits is one load, as before this series. */
static void test_remap_same_size_is_one_load(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, run_plan(test, SZ_2M, SZ_8M, 21, false, 21, 30),
			1);
	KUNIT_EXPECT_EQ(test, run_plan(test, 0, 5 * PAGE_SIZE, PAGE_SHIFT,
				       false, PAGE_SHIFT, 30), 1);
}

/* The plan's steps are the ones worked by hand, field by field. */
static void expect_steps(struct kunit *test, const struct mlx5r_xlt_step *got,
			 const struct mlx5r_xlt_step *want, unsigned int n)
{
	unsigned int k;

	for (k = 0; k < n; k++) {
		KUNIT_EXPECT_EQ(test, got[k].op, want[k].op);
		KUNIT_EXPECT_EQ(test, got[k].shift, want[k].shift);
		KUNIT_EXPECT_EQ(test, got[k].start, want[k].start);
		KUNIT_EXPECT_EQ(test, got[k].nents, want[k].nents);
	}
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

	if (PAGE_SHIFT != 12)
		kunit_skip(test, "worked for 4 KiB pages");
	KUNIT_ASSERT_EQ(test, mlx5r_dmabuf_plan_xlt(steps, 0, SZ_4M, 21, false,
						    12, 30, MTT_ALIGN),
			ARRAY_SIZE(want));
	expect_steps(test, steps, want, ARRAY_SIZE(want));
	KUNIT_EXPECT_EQ(test, run_plan(test, 0, SZ_4M, 21, false, 12, 30),
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

	KUNIT_ASSERT_EQ(test, mlx5r_dmabuf_plan_xlt(steps, 0, SZ_4M,
						    PAGE_SHIFT, false, 21, 30,
						    MTT_ALIGN),
			ARRAY_SIZE(want));
	expect_steps(test, steps, want, ARRAY_SIZE(want));
}

/*
 * After a change failed part way the driver does not know the device's
 * page size: whatever it is, the next load changes it, also to the size
 * the driver last set.
 */
static void test_unknown_size_always_changes(struct kunit *test)
{
	const unsigned int p = PAGE_SHIFT;

	KUNIT_EXPECT_EQ(test, run_plan(test, 0, SZ_8M, 21, true, p, 30), 5);
	KUNIT_EXPECT_EQ(test, run_plan(test, 0, SZ_8M, p, true, 21, 30), 4);
	KUNIT_EXPECT_GT(test, run_plan(test, 0, SZ_8M, p, true, p, 30), 1);
	KUNIT_EXPECT_GT(test, run_plan(test, 0, SZ_8M, 21, true, 21, 30), 1);
}

static const unsigned int shifts[] = { 12, 13, 16, 21, 22, 30 };

/* A page size these tests use that this kernel and device can take. */
static bool usable(unsigned int shift, unsigned int max_shift)
{
	return shift >= PAGE_SHIFT && shift <= max_shift;
}

/* Every change between the sizes a device of max_shift takes, of one MR. */
static void change_every_size(struct kunit *test, u64 iova, u64 length,
			      unsigned int max_shift)
{
	unsigned int a, b, from, to;

	for (a = 0; a < ARRAY_SIZE(shifts); a++) {
		for (b = 0; b < ARRAY_SIZE(shifts); b++) {
			from = shifts[a];
			to = shifts[b];
			if (!usable(from, max_shift) || !usable(to, max_shift))
				continue;
			run_plan(test, iova, length, from, false, to, max_shift);
			run_plan(test, iova, length, from, true, to, max_shift);
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

	for (l = 0; l < ARRAY_SIZE(lengths); l++) {
		for (v = 0; v < ARRAY_SIZE(iovas); v++) {
			change_every_size(test, iovas[v], lengths[l], 21);
			change_every_size(test, iovas[v], lengths[l], 30);
		}
	}
}

/*
 * From the device at from: a load at to fails after done_a of its steps
 * took effect (done_a may be all of them: the last UMR's completion
 * failed), and a move_notify follows or not; then a load at next fails
 * after done_b steps and a move_notify follows, or it succeeds; then a load
 * at to succeeds.  Each move_notify must leave nothing reachable and each
 * load be safe, whatever the driver could not know.
 */
static void fail_and_retry(struct kunit *test, u64 iova, u64 length,
			   unsigned int from, unsigned int to,
			   unsigned int next, unsigned int max_shift)
{
	struct mlx5r_xlt_step steps[MLX5R_DMABUF_MAX_STEPS];
	unsigned int n_a, n_b, done_a, done_b, zap;
	struct driver_state d;
	struct mkey_model *m;

	n_a = mlx5r_dmabuf_plan_xlt(steps, iova, length, from, false, to,
				    max_shift, MTT_ALIGN);
	for (done_a = 0; done_a <= n_a; done_a++) {
		for (zap = 0; zap < 2; zap++) {
			d = (struct driver_state){ .shift = from };
			mlx5r_dmabuf_load_done(&d.shift, &d.unknown, to, n_a,
					       -EIO);
			n_b = mlx5r_dmabuf_plan_xlt(steps, iova, length,
						    d.shift, d.unknown, next,
						    max_shift, MTT_ALIGN);
			/* done_b past n_b: the load at next succeeds */
			for (done_b = 0; done_b <= n_b + 1; done_b++) {
				m = model_new(test, iova, length, from);
				d = (struct driver_state){ .shift = from };
				load(m, &d, to, max_shift, done_a, -EIO);
				if (zap)
					move_notify(m, &d);
				if (done_b <= n_b) {
					load(m, &d, next, max_shift, done_b,
					     -EIO);
					move_notify(m, &d);
				} else {
					load(m, &d, next, max_shift, UINT_MAX,
					     0);
				}
				load(m, &d, to, max_shift, UINT_MAX, 0);
				model_free(m);
			}
		}
	}
}

/* fail_and_retry() between every three of the sizes a device takes. */
static void fail_between_sizes(struct kunit *test, u64 iova, u64 length,
			       const unsigned int *some, unsigned int nr,
			       unsigned int max_shift)
{
	unsigned int a, b, c;

	for (a = 0; a < nr; a++) {
		for (b = 0; b < nr; b++) {
			for (c = 0; c < nr; c++) {
				if (!usable(some[a], max_shift) ||
				    !usable(some[b], max_shift) ||
				    !usable(some[c], max_shift))
					continue;
				fail_and_retry(test, iova, length, some[a],
					       some[b], some[c], max_shift);
			}
		}
	}
}

/* Failed loads between sizes up to 1 GiB, for short MRs on and off 2 MiB. */
static void test_failed_loads_are_covered(struct kunit *test)
{
	static const unsigned int some[] = { 12, 16, 21, 30 };

	fail_between_sizes(test, SZ_4K, 5 * SZ_4K, some, ARRAY_SIZE(some), 30);
	fail_between_sizes(test, SZ_2M - SZ_4K, 5 * SZ_4K, some,
			   ARRAY_SIZE(some), 30);
	fail_between_sizes(test, SZ_4K, SZ_2M + SZ_4K, some, ARRAY_SIZE(some),
			   30);
}

/*
 * The same for an 18 MiB MR on a device that takes 2 MiB pages, where the
 * zapped entries are more than one UMR unit.
 */
static void test_failed_long_loads_are_covered(struct kunit *test)
{
	static const unsigned int some[] = { 12, 16, 21 };

	fail_between_sizes(test, SZ_4K, SZ_16M + SZ_2M, some, ARRAY_SIZE(some),
			   21);
}

/*
 * A 1 GiB MR between pages and 1 GiB pages, both ways.  Up, it parks at
 * the new size itself, so there is no second size to set.
 */
static void test_1g_mr_changes(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, run_plan(test, SZ_1G, SZ_1G, PAGE_SHIFT, false,
				       30, 30), 3);
	KUNIT_EXPECT_EQ(test, run_plan(test, SZ_1G, SZ_1G, 30, false,
				       PAGE_SHIFT, 30), 5);
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

/* The device's minimum: KSM's own where reported, never below PAGE_SIZE. */
static void test_log_pgsz_floor(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, mlx5r_log_pgsz_floor(0, false, false, 0),
			PAGE_SHIFT);
	KUNIT_EXPECT_EQ(test, mlx5r_log_pgsz_floor(PAGE_SHIFT + 4, false, true,
						   PAGE_SHIFT + 8),
			PAGE_SHIFT + 4);
	KUNIT_EXPECT_EQ(test, mlx5r_log_pgsz_floor(PAGE_SHIFT + 4, true, true,
						   PAGE_SHIFT + 8),
			PAGE_SHIFT + 8);
	/* A KSM minimum that is not valid is not used. */
	KUNIT_EXPECT_EQ(test, mlx5r_log_pgsz_floor(PAGE_SHIFT + 4, true, false,
						   PAGE_SHIFT + 8),
			PAGE_SHIFT + 4);
}

/* Loads never use a size below the minimum, and KSM none above the IOVA's. */
static void test_dmabuf_pgsz_bitmap(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, mlx5r_dmabuf_pgsz_bitmap(PAGE_SHIFT, 21, false,
						       SZ_4K),
			GENMASK(21, PAGE_SHIFT));
	KUNIT_EXPECT_EQ(test, mlx5r_dmabuf_pgsz_bitmap(16, 21, false, SZ_4K),
			GENMASK(21, 16));
	KUNIT_EXPECT_EQ(test, mlx5r_dmabuf_pgsz_bitmap(PAGE_SHIFT, 30, true,
						       SZ_2M + SZ_64K),
			GENMASK(16, PAGE_SHIFT));
	KUNIT_EXPECT_EQ(test, mlx5r_dmabuf_pgsz_bitmap(PAGE_SHIFT, 30, true, 0),
			GENMASK(30, PAGE_SHIFT));
	/* No size the device takes fits the IOVA: none. */
	KUNIT_EXPECT_EQ(test, mlx5r_dmabuf_pgsz_bitmap(21, 30, true, SZ_64K),
			0);
}

/*
 * move_notify's stop of a dynamic dma-buf MR against the model: the zap
 * writes the model's entries one UMR unit at a time and fails after
 * zap_units of them (0: the UMR QP is in error and nothing is posted); the
 * destroy command fails with destroy_err.  Each records that it ran.
 */
struct stop_model {
	struct mkey_model *m;
	unsigned int zap_units;
	int destroy_err;
	bool destroyed;
	bool halted;
};

static int fake_zap(struct mlx5_ib_mr *mr)
{
	struct stop_model *sm = kunit_get_current_test()->priv;
	size_t n = nblocks(sm->m->iova, sm->m->length, sm->m->shift), u;

	for (u = 0; u < DIV_ROUND_UP(n, MTT_ALIGN); u++) {
		if (u == sm->zap_units)
			return -EFAULT;
		model_write(sm->m, u * MTT_ALIGN,
			    min_t(size_t, MTT_ALIGN, n - u * MTT_ALIGN),
			    NOT_PRESENT);
	}
	return 0;
}

static int fake_destroy_mkey(struct mlx5_ib_mr *mr)
{
	struct stop_model *sm = kunit_get_current_test()->priv;

	if (sm->destroy_err)
		return sm->destroy_err;
	sm->destroyed = true;
	return 0;
}

static void fake_halt_dma(struct mlx5_ib_dev *dev)
{
	struct stop_model *sm = kunit_get_current_test()->priv;

	sm->halted = true;
}

/* The device can reach the memory through the mkey. */
static bool stop_model_reaches(struct stop_model *sm)
{
	return !sm->destroyed && !sm->halted && !model_unreachable(sm->m);
}

struct fake_dmabuf_mr {
	struct mlx5_ib_dev *dev;
	struct ib_umem umem;
	struct mlx5_ib_mr mr;
};

static void destroy_odp_mkeys(void *xa)
{
	xa_destroy(xa);
}

/* A dynamic dma-buf MR, registered with the device's odp_mkeys. */
static struct fake_dmabuf_mr *fake_dmabuf_mr_new(struct kunit *test, u32 key)
{
	struct fake_dmabuf_mr *f = kunit_kzalloc(test, sizeof(*f), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, f);
	f->dev = kunit_kzalloc(test, sizeof(*f->dev), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, f->dev);
	/* a PF, for what the stop asks of it */
	f->dev->mdev = kunit_kzalloc(test, sizeof(*f->dev->mdev), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, f->dev->mdev);
	xa_init(&f->dev->odp_mkeys);
	KUNIT_ASSERT_EQ(test, kunit_add_action_or_reset(test, destroy_odp_mkeys,
							&f->dev->odp_mkeys), 0);
	f->umem.is_dmabuf = 1;
	f->mr.umem = &f->umem;
	f->mr.ibmr.device = &f->dev->ib_dev;
	f->mr.mmkey.type = MLX5_MKEY_MR;
	f->mr.mmkey.key = key;
	init_waitqueue_head(&f->mr.mmkey.wait);
	KUNIT_ASSERT_EQ(test, mlx5r_store_odp_mkey(f->dev, &f->mr.mmkey), 0);
	return f;
}

static struct stop_model *stop_model_new(struct kunit *test, u64 length,
					 unsigned int zap_units,
					 int destroy_err)
{
	struct stop_model *sm = kunit_kzalloc(test, sizeof(*sm), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, sm);
	sm->m = model_new(test, SZ_2M, length, PAGE_SHIFT);
	sm->zap_units = zap_units;
	sm->destroy_err = destroy_err;
	test->priv = sm;
	kunit_activate_static_stub(test, mlx5_ib_dmabuf_zap, fake_zap);
	kunit_activate_static_stub(test, mlx5_ib_dmabuf_destroy_mkey,
				   fake_destroy_mkey);
	kunit_activate_static_stub(test, mlx5_ib_dmabuf_halt_dma,
				   fake_halt_dma);
	return sm;
}

/* A zap that works stops the DMA and keeps the mkey for the next fault. */
static void test_zap_keeps_mkey(struct kunit *test)
{
	struct fake_dmabuf_mr *f = fake_dmabuf_mr_new(test, 0x1234);
	struct stop_model *sm = stop_model_new(test, SZ_1M, UINT_MAX, 0);

	mlx5_ib_dmabuf_stop_dma(&f->mr);
	KUNIT_EXPECT_FALSE(test, stop_model_reaches(sm));
	KUNIT_EXPECT_TRUE(test, model_unreachable(sm->m));
	KUNIT_EXPECT_FALSE(test, sm->destroyed);
	KUNIT_EXPECT_FALSE(test, sm->halted);
	KUNIT_EXPECT_FALSE(test, f->mr.dmabuf_mkey_dead);
	KUNIT_EXPECT_PTR_EQ(test, xa_load(&f->dev->odp_mkeys, 0x1200),
			    (void *)&f->mr.mmkey);

	/* dereg takes it out and drops the first reference */
	mlx5_ib_wait_odp_mkey_users(&f->mr);
	KUNIT_EXPECT_NULL(test, xa_load(&f->dev->odp_mkeys, 0x1200));
	KUNIT_EXPECT_EQ(test, refcount_read(&f->mr.mmkey.usecount), 0);
}

struct dereg_wait {
	struct mlx5_ib_mr *mr;
	struct completion done;
};

static int dereg_wait_fn(void *data)
{
	struct dereg_wait *w = data;

	mlx5_ib_wait_odp_mkey_users(w->mr);
	complete(&w->done);
	return 0;
}

/*
 * A zap that fails after any of its UMRs, or posts none because the UMR QP
 * is in error, leaves present entries: the mkey is destroyed before the
 * stop returns.  Dereg then waits for the page fault that was in flight,
 * and neither drops its reference nor takes out the odp_mkeys entry of
 * another mkey given the destroyed one's index.
 */
static void test_failed_zap_destroys_mkey(struct kunit *test)
{
	/* 4 MiB at 4 KiB pages: 1024 entries, 8 UMR units */
	size_t units = DIV_ROUND_UP(SZ_4M / SZ_4K, MTT_ALIGN);
	unsigned int done;

	for (done = 0; done < units; done++) {
		struct fake_dmabuf_mr *f = fake_dmabuf_mr_new(test, 0x1234);
		struct stop_model *sm = stop_model_new(test, SZ_4M, done, 0);
		struct mlx5_ib_mkey stranger = {
			.type = MLX5_MKEY_MR, .key = 0x12ab,
		};
		struct dereg_wait w = { .mr = &f->mr };
		struct task_struct *task;

		/* a page fault in flight holds a reference */
		refcount_inc(&f->mr.mmkey.usecount);
		mlx5_ib_dmabuf_stop_dma(&f->mr);
		KUNIT_EXPECT_FALSE_MSG(test, stop_model_reaches(sm),
				       "zap failed after %u UMRs", done);
		KUNIT_EXPECT_FALSE(test, model_unreachable(sm->m));
		KUNIT_EXPECT_TRUE(test, sm->destroyed);
		KUNIT_EXPECT_FALSE(test, sm->halted);
		KUNIT_EXPECT_TRUE(test, f->mr.dmabuf_mkey_dead);
		/* no new fault finds it; the one in flight keeps its own */
		KUNIT_EXPECT_NULL(test, xa_load(&f->dev->odp_mkeys, 0x1200));
		KUNIT_EXPECT_EQ(test, refcount_read(&f->mr.mmkey.usecount), 1);

		/* the index is given to another mkey; dereg waits for the fault */
		KUNIT_ASSERT_EQ(test, mlx5r_store_odp_mkey(f->dev, &stranger),
				0);
		init_completion(&w.done);
		task = kthread_run(dereg_wait_fn, &w, "mlx5_umr_test");
		KUNIT_ASSERT_NOT_ERR_OR_NULL(test, task);
		KUNIT_EXPECT_FALSE(test, wait_for_completion_timeout(&w.done,
								     HZ / 10));
		KUNIT_EXPECT_EQ(test, refcount_read(&f->mr.mmkey.usecount), 1);
		mlx5r_deref_odp_mkey(&f->mr.mmkey);
		if (!wait_for_completion_timeout(&w.done, 10 * HZ)) {
			/* let the thread go before its memory does */
			refcount_set(&f->mr.mmkey.usecount, 0);
			wake_up(&f->mr.mmkey.wait);
			wait_for_completion(&w.done);
			KUNIT_FAIL(test, "dereg still waits once the fault ended");
		}
		KUNIT_EXPECT_PTR_EQ(test, xa_load(&f->dev->odp_mkeys, 0x1200),
				    (void *)&stranger);
		KUNIT_EXPECT_EQ(test, refcount_read(&stranger.usecount), 1);
		KUNIT_EXPECT_EQ(test, refcount_read(&f->mr.mmkey.usecount), 0);
	}
}

/*
 * An SF cannot stop its DMA (its pdev is its parent's) and is not
 * revocable: a failed destroy is only logged.
 */
static void test_sf_failed_destroy_does_not_halt_parent(struct kunit *test)
{
	struct fake_dmabuf_mr *f = fake_dmabuf_mr_new(test, 0x1234);
	struct stop_model *sm = stop_model_new(test, SZ_1M, 0, -EIO);

	f->dev->mdev->coredev_type = MLX5_COREDEV_SF;
	mlx5_ib_dmabuf_stop_dma(&f->mr);
	KUNIT_EXPECT_FALSE(test, sm->destroyed);
	KUNIT_EXPECT_FALSE(test, sm->halted);
	KUNIT_EXPECT_TRUE(test, f->mr.dmabuf_mkey_dead);
}

/* A device that fails the destroy command too gets its DMA turned off. */
static void test_failed_destroy_halts_device(struct kunit *test)
{
	struct fake_dmabuf_mr *f = fake_dmabuf_mr_new(test, 0x1234);
	struct stop_model *sm = stop_model_new(test, SZ_1M, 1, -ETIMEDOUT);

	mlx5_ib_dmabuf_stop_dma(&f->mr);
	KUNIT_EXPECT_FALSE(test, stop_model_reaches(sm));
	KUNIT_EXPECT_FALSE(test, sm->destroyed);
	KUNIT_EXPECT_TRUE(test, sm->halted);
	KUNIT_EXPECT_TRUE(test, f->mr.dmabuf_mkey_dead);
	mlx5_ib_wait_odp_mkey_users(&f->mr);
	KUNIT_EXPECT_EQ(test, refcount_read(&f->mr.mmkey.usecount), 0);
}

static struct kunit_case mlx5_umr_dmabuf_cases[] = {
	KUNIT_CASE(test_first_map_is_one_load),
	KUNIT_CASE(test_remap_same_size_is_one_load),
	KUNIT_CASE(test_remap_smaller_steps),
	KUNIT_CASE(test_remap_bigger_steps),
	KUNIT_CASE(test_unknown_size_always_changes),
	KUNIT_CASE(test_every_change_is_safe),
	KUNIT_CASE(test_failed_loads_are_covered),
	KUNIT_CASE(test_failed_long_loads_are_covered),
	KUNIT_CASE(test_1g_mr_changes),
	KUNIT_CASE(test_log_pgsz_limit),
	KUNIT_CASE(test_log_pgsz_floor),
	KUNIT_CASE(test_dmabuf_pgsz_bitmap),
	KUNIT_CASE(test_zap_keeps_mkey),
	KUNIT_CASE(test_failed_zap_destroys_mkey),
	KUNIT_CASE(test_failed_destroy_halts_device),
	KUNIT_CASE(test_sf_failed_destroy_does_not_halt_parent),
	{}
};

static struct kunit_suite mlx5_umr_dmabuf_suite = {
	.name = "mlx5-umr-dmabuf",
	.test_cases = mlx5_umr_dmabuf_cases,
};

kunit_test_suite(mlx5_umr_dmabuf_suite);

MODULE_DESCRIPTION("KUnit tests for the UMRs that load mlx5 dma-buf mkeys");
MODULE_LICENSE("Dual BSD/GPL");
