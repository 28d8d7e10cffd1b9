// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the dma-buf core's IOMMU-domain mappings: a mock exporter
 * of device memory by physical address, mock IOMMU domains that record
 * their page table entries, and a kunit device as the importer.
 */
#include <kunit/device.h>
#include <kunit/test.h>
#include <kunit/test-bug.h>
#include <linux/dma-buf.h>
#include <linux/dma-buf-iommu.h>
#include <linux/dma-buf-phys.h>
#include <linux/dma-resv.h>
#include <linux/iommu.h>
#include <linux/ioport.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "dma-buf-iommu-core.h"

MODULE_IMPORT_NS(DMA_BUF);
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);
/* 6.12's loader treats the module: namespace as a plain one */
MODULE_INFO(import_ns, "module:iommufd");

/* Made-up device memory, away from System RAM on the test machines. */
#define FAKE_MMIO ((phys_addr_t)(sizeof(phys_addr_t) > 4 ? 1ULL << 40 : \
							   0xc0000000ULL))
#define FAKE_MMIO_SIZE SZ_64M
#define MAX_SPANS 4

/* A domain's entries: one per page, (pfn << 8 | prot) by IOVA page. */
struct mock_domain {
	struct iommu_domain domain;
	struct xarray ptes;
	unsigned long map_calls;	/* map_pages() calls */
	unsigned long unmap_calls;	/* unmap_pages() calls */
	unsigned long unflushed;	/* pages unmapped, IOTLB not synced */
	unsigned int fail_nth;		/* the nth map_pages() from now fails */
	int fail_err;			/* with this, or -ENOMEM if 0 */
	size_t max_pgsize;		/* the largest page size mapped */
};

static struct mock_domain *to_mock(struct iommu_domain *domain)
{
	return container_of(domain, struct mock_domain, domain);
}

static int mock_map_pages(struct iommu_domain *domain, unsigned long iova,
			  phys_addr_t paddr, size_t pgsize, size_t pgcount,
			  int prot, gfp_t gfp, size_t *mapped)
{
	struct mock_domain *md = to_mock(domain);
	size_t i, pages = pgsize * pgcount / PAGE_SIZE;

	md->map_calls++;
	if (md->fail_nth && !--md->fail_nth)
		return md->fail_err ?: -ENOMEM;
	md->max_pgsize = max(md->max_pgsize, pgsize);
	for (i = 0; i < pages; i++) {
		unsigned long v = (PHYS_PFN(paddr) + i) << 8 | (prot & 0xff);

		if (xa_store(&md->ptes, (iova >> PAGE_SHIFT) + i,
			     xa_mk_value(v), gfp))
			return -ENOMEM;
	}
	*mapped = pgsize * pgcount;
	return 0;
}

static size_t mock_unmap_pages(struct iommu_domain *domain, unsigned long iova,
			       size_t pgsize, size_t pgcount,
			       struct iommu_iotlb_gather *gather)
{
	struct mock_domain *md = to_mock(domain);
	size_t i, pages = pgsize * pgcount / PAGE_SIZE;

	md->unmap_calls++;
	for (i = 0; i < pages; i++)
		if (!xa_erase(&md->ptes, (iova >> PAGE_SHIFT) + i))
			return i * PAGE_SIZE;
	md->unflushed += pages;
	iommu_iotlb_gather_add_page(domain, gather, iova, pgsize * pgcount);
	return pgsize * pgcount;
}

static void mock_iotlb_sync(struct iommu_domain *domain,
			    struct iommu_iotlb_gather *gather)
{
	to_mock(domain)->unflushed = 0;
}

static const struct iommu_domain_ops mock_domain_ops = {
	.map_pages = mock_map_pages,
	.unmap_pages = mock_unmap_pages,
	.iotlb_sync = mock_iotlb_sync,
};

static void mock_domain_free(void *data)
{
	struct mock_domain *md = data;

	xa_destroy(&md->ptes);
}

static struct mock_domain *mock_domain(struct kunit *test)
{
	struct mock_domain *md = kunit_kzalloc(test, sizeof(*md), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, md);
	xa_init(&md->ptes);
	md->domain.type = IOMMU_DOMAIN_UNMANAGED;
	md->domain.ops = &mock_domain_ops;
	md->domain.pgsize_bitmap = PAGE_SIZE | SZ_2M;
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, mock_domain_free,
							   md));
	return md;
}

/* The entry of @iova in @md: its physical address and prot, or false. */
static bool pte(struct mock_domain *md, unsigned long iova, phys_addr_t *phys,
		int *prot)
{
	void *ent = xa_load(&md->ptes, iova >> PAGE_SHIFT);

	if (!ent)
		return false;
	*phys = PFN_PHYS(xa_to_value(ent) >> 8);
	*prot = xa_to_value(ent) & 0xff;
	return true;
}

/*
 * The exporter: device memory at FAKE_MMIO in spans given in the order of
 * @spans, revoked by the test.  It outlives the case if a dma-buf does.
 */
struct mock_exporter {
	struct dma_buf_phys_range spans[MAX_SPANS];
	unsigned int nr_spans;
	bool revoked;		/* under the reservation lock */
	int error;		/* returned by the next list asked for */
	int lists;		/* lists handed out and not given back */
	int list_calls;		/* get_phys_ranges() calls */
	struct device *unreachable;	/* the one device that cannot reach it */
};

static int mock_pin(struct dma_buf_attachment *attach)
{
	return 0;
}

static void mock_unpin(struct dma_buf_attachment *attach)
{
}

static struct dma_buf_ranges *mock_map_ranges(struct dma_buf_attachment *a,
					      enum dma_data_direction dir)
{
	return ERR_PTR(-EOPNOTSUPP);
}

static void mock_unmap_ranges(struct dma_buf_attachment *a,
			      struct dma_buf_ranges *ranges,
			      enum dma_data_direction dir)
{
}

static struct dma_buf_phys_ranges *mock_get_phys(struct dma_buf_attachment *a)
{
	struct mock_exporter *exp = a->dmabuf->priv;
	struct dma_buf_phys_ranges *list;

	dma_resv_assert_held(a->dmabuf->resv);
	exp->list_calls++;
	if (exp->revoked)
		return ERR_PTR(-ENODEV);
	if (exp->error) {
		int error = exp->error;

		exp->error = 0;
		return ERR_PTR(error);
	}
	list = dma_buf_phys_ranges_alloc(exp->nr_spans, GFP_KERNEL);
	if (!list)
		return NULL;
	memcpy(list->ranges, exp->spans, exp->nr_spans * sizeof(exp->spans[0]));
	exp->lists++;
	return list;
}

static void mock_put_phys(struct dma_buf_attachment *a,
			  struct dma_buf_phys_ranges *list)
{
	struct mock_exporter *exp = a->dmabuf->priv;

	exp->lists--;
	dma_buf_phys_ranges_free(list);
}

static bool mock_iommu_reachable(struct dma_buf_attachment *a,
				 struct device *dev)
{
	struct mock_exporter *exp = a->dmabuf->priv;

	return dev != exp->unreachable;
}

static void mock_release(struct dma_buf *dmabuf)
{
	kfree(dmabuf->priv);
}

static const struct dma_buf_ops mock_ops = {
	.pin = mock_pin,
	.unpin = mock_unpin,
	.map_dma_ranges = mock_map_ranges,
	.unmap_dma_ranges = mock_unmap_ranges,
	.get_phys_ranges = mock_get_phys,
	.put_phys_ranges = mock_put_phys,
	.iommu_reachable = mock_iommu_reachable,
	.release = mock_release,
};

/* What the importer's move_notify found. */
struct mock_importer {
	struct mock_domain *domains[2];
	struct mock_exporter *exp;
	int moves;
	unsigned long ptes_at_notify;	/* left in the domains */
	unsigned long unflushed_at_notify;
	int lists_at_notify;
};

static void importer_move_notify(struct dma_buf_attachment *attach)
{
	struct mock_importer *imp = attach->importer_priv;
	unsigned int i;

	imp->moves++;
	imp->lists_at_notify = imp->exp->lists;
	imp->ptes_at_notify = 0;
	imp->unflushed_at_notify = 0;
	for (i = 0; i < ARRAY_SIZE(imp->domains); i++) {
		struct mock_domain *md = imp->domains[i];
		unsigned long index;
		void *ent;

		if (!md)
			continue;
		xa_for_each(&md->ptes, index, ent)
			imp->ptes_at_notify++;
		imp->unflushed_at_notify += md->unflushed;
	}
}

static const struct dma_buf_attach_ops iommu_importer_ops = {
	.allow_peer2peer = true,
	.allow_revoke = true,
	.map_types = BIT(DMA_BUF_MAP_IOMMU),
	.move_notify = importer_move_notify,
};

struct fixture {
	struct kunit *test;
	struct device *dev;
	struct mock_exporter *exp;
	struct dma_buf *dmabuf;
	struct dma_buf_attachment *attach;
	struct mock_importer imp;
};

static void put_dmabuf(void *data)
{
	dma_buf_put(data);
}

/*
 * A dma-buf of @size bytes made of @nr spans of @span_len bytes each,
 * given in reverse order: span i is at FAKE_MMIO + (nr - 1 - i) * span_len.
 */
static void export(struct fixture *f, size_t size, unsigned int nr,
		   u64 span_len)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct kunit *test = f->test;
	unsigned int i;

	f->exp = kzalloc(sizeof(*f->exp), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, f->exp);
	f->exp->nr_spans = nr;
	for (i = 0; i < nr; i++) {
		f->exp->spans[i].addr = FAKE_MMIO + (nr - 1 - i) * span_len;
		f->exp->spans[i].len = span_len;
	}
	info.ops = &mock_ops;
	info.size = size;
	info.flags = O_RDWR;
	info.priv = f->exp;
	f->dmabuf = dma_buf_export(&info);
	if (IS_ERR(f->dmabuf))
		kfree(f->exp);
	KUNIT_ASSERT_FALSE(test, IS_ERR(f->dmabuf));
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, put_dmabuf,
							   f->dmabuf));
	f->imp.exp = f->exp;
}

static void detach(void *data)
{
	struct fixture *f = data;

	dma_buf_detach(f->dmabuf, f->attach);
}

static void attach(struct fixture *f)
{
	struct kunit *test = f->test;

	f->attach = dma_buf_dynamic_attach(f->dmabuf, f->dev,
					   &iommu_importer_ops, &f->imp);
	KUNIT_ASSERT_FALSE(test, IS_ERR(f->attach));
	KUNIT_ASSERT_EQ(test, DMA_BUF_MAP_IOMMU, f->attach->map_type);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, detach, f));
}

static struct fixture *fixture(struct kunit *test)
{
	struct fixture *f = kunit_kzalloc(test, sizeof(*f), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, f);
	f->test = test;
	f->dev = kunit_device_register(test, "dma-buf-iommu-test");
	KUNIT_ASSERT_FALSE(test, IS_ERR(f->dev));
	return f;
}

static int map(struct fixture *f, struct dma_buf_iommu_map *m,
	       struct mock_domain *md, unsigned long iova, u64 offset,
	       size_t length, int prot)
{
	int ret;

	m->domain = &md->domain;
	m->iova = iova;
	m->offset = offset;
	m->length = length;
	m->prot = prot;
	dma_resv_lock(f->dmabuf->resv, NULL);
	ret = dma_buf_iommu_map(f->attach, m);
	dma_resv_unlock(f->dmabuf->resv);
	return ret;
}

static void unmap(struct fixture *f, struct dma_buf_iommu_map *m)
{
	dma_resv_lock(f->dmabuf->resv, NULL);
	dma_buf_iommu_unmap(f->attach, m);
	dma_resv_unlock(f->dmabuf->resv);
}

static int state(struct fixture *f, struct dma_buf_iommu_map *m)
{
	int ret;

	dma_resv_lock(f->dmabuf->resv, NULL);
	ret = dma_buf_iommu_map_state(m);
	dma_resv_unlock(f->dmabuf->resv);
	return ret;
}

/* The exporter takes access away, or gives it back, as vfio-pci does. */
static void set_revoked(struct fixture *f, bool revoked)
{
	dma_resv_lock(f->dmabuf->resv, NULL);
	f->exp->revoked = revoked;
	if (revoked)
		dma_buf_move_notify(f->dmabuf);
	else
		dma_buf_restore_mappings(f->dmabuf);
	dma_resv_unlock(f->dmabuf->resv);
}

static unsigned long alignment(struct fixture *f, u64 offset)
{
	unsigned long align;

	dma_resv_lock(f->dmabuf->resv, NULL);
	align = dma_buf_iommu_alignment(f->attach, offset);
	dma_resv_unlock(f->dmabuf->resv);
	return align;
}

static unsigned long nr_ptes(struct mock_domain *md)
{
	unsigned long index, n = 0;
	void *ent;

	xa_for_each(&md->ptes, index, ent)
		n++;
	return n;
}

/*
 * Does @md map [@iova, @iova + @length) to the dma-buf from @offset, page
 * by page, as uncached MMIO with @prot?
 */
static void expect_mapped(struct fixture *f, struct mock_domain *md,
			  unsigned long iova, u64 offset, size_t length,
			  int prot)
{
	struct kunit *test = f->test;
	size_t done;

	for (done = 0; done < length; done += PAGE_SIZE) {
		u64 off = offset + done;
		unsigned int span = div64_u64(off, f->exp->spans[0].len);
		phys_addr_t want = f->exp->spans[span].addr +
				   (off - span * f->exp->spans[0].len);
		phys_addr_t phys;
		int got;

		KUNIT_ASSERT_TRUE_MSG(test, pte(md, iova + done, &phys, &got),
				      "IOVA %#lx not mapped", iova + done);
		KUNIT_EXPECT_EQ(test, want, phys);
		KUNIT_EXPECT_EQ(test, prot | IOMMU_MMIO, got);
	}
}

static char fdinfo_buf[256];

/* The dma-buf's fdinfo lines from the core's IOMMU-domain mappings. */
static const char *iommu_fdinfo(struct fixture *f)
{
	struct seq_file m = { .buf = fdinfo_buf, .size = sizeof(fdinfo_buf) };

	memset(fdinfo_buf, 0, sizeof(fdinfo_buf));
	dma_buf_iommu_show_fdinfo(&m, f->dmabuf);
	return fdinfo_buf;
}

static int dma_buf_iommu_test_init(struct kunit *test)
{
	KUNIT_ASSERT_EQ_MSG(test, REGION_DISJOINT,
			    region_intersects(FAKE_MMIO, FAKE_MMIO_SIZE,
					      IORESOURCE_SYSTEM_RAM,
					      IORES_DESC_NONE),
			    "the made-up device memory is System RAM here");
	return 0;
}

/*
 * A part of the buffer across both spans, from an offset, in one domain:
 * every page where the spans say, uncached MMIO whatever the importer
 * asked; unmapped with the IOTLB synced, the list given back.
 */
static void test_map_follows_spans_uncached(struct kunit *test)
{
	struct fixture *f = fixture(test);
	struct mock_domain *md = mock_domain(test);
	struct dma_buf_iommu_map m = {};

	export(f, 8 * PAGE_SIZE, 2, 4 * PAGE_SIZE);
	attach(f);
	KUNIT_ASSERT_EQ(test, 0, map(f, &m, md, SZ_1M, 2 * PAGE_SIZE,
				     4 * PAGE_SIZE,
				     IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE));
	KUNIT_EXPECT_EQ(test, 0, state(f, &m));
	KUNIT_EXPECT_EQ(test, 4UL, nr_ptes(md));
	expect_mapped(f, md, SZ_1M, 2 * PAGE_SIZE, 4 * PAGE_SIZE,
		      IOMMU_READ | IOMMU_WRITE);
	KUNIT_EXPECT_EQ(test, 1, f->exp->lists);
	KUNIT_EXPECT_EQ(test, 1U, f->attach->map_count);

	unmap(f, &m);
	KUNIT_EXPECT_EQ(test, 0UL, nr_ptes(md));
	KUNIT_EXPECT_EQ(test, 0UL, md->unflushed);
	KUNIT_EXPECT_EQ(test, 0, f->exp->lists);
	KUNIT_EXPECT_EQ(test, 0U, f->attach->map_count);
}

/*
 * Revoke: by the time the importer hears of it, no entry is left in any
 * domain, the IOTLBs are synced and the exporter has its list back.
 * Restore brings back exactly what was mapped, without telling the
 * importer.
 */
static void test_revoke_unmaps_before_notify_restore_maps_again(struct kunit *test)
{
	struct fixture *f = fixture(test);
	struct mock_domain *a = mock_domain(test), *b = mock_domain(test);
	struct dma_buf_iommu_map m[3] = {};

	export(f, 8 * PAGE_SIZE, 2, 4 * PAGE_SIZE);
	f->imp.domains[0] = a;
	f->imp.domains[1] = b;
	attach(f);
	KUNIT_ASSERT_EQ(test, 0, map(f, &m[0], a, 0, 0, 8 * PAGE_SIZE,
				     IOMMU_READ | IOMMU_WRITE));
	KUNIT_ASSERT_EQ(test, 0, map(f, &m[1], b, SZ_2M, 0, 8 * PAGE_SIZE,
				     IOMMU_READ));
	KUNIT_ASSERT_EQ(test, 0, map(f, &m[2], b, SZ_4M, 3 * PAGE_SIZE,
				     PAGE_SIZE, IOMMU_WRITE));

	set_revoked(f, true);
	KUNIT_EXPECT_EQ(test, 1, f->imp.moves);
	KUNIT_EXPECT_EQ(test, 0UL, f->imp.ptes_at_notify);
	KUNIT_EXPECT_EQ(test, 0UL, f->imp.unflushed_at_notify);
	KUNIT_EXPECT_EQ(test, 0, f->imp.lists_at_notify);
	KUNIT_EXPECT_EQ(test, -ENODEV, state(f, &m[0]));
	KUNIT_EXPECT_EQ(test, -ENODEV, state(f, &m[2]));

	set_revoked(f, false);
	KUNIT_EXPECT_EQ(test, 1, f->imp.moves);
	KUNIT_EXPECT_EQ(test, 8UL, nr_ptes(a));
	KUNIT_EXPECT_EQ(test, 9UL, nr_ptes(b));
	expect_mapped(f, a, 0, 0, 8 * PAGE_SIZE, IOMMU_READ | IOMMU_WRITE);
	expect_mapped(f, b, SZ_2M, 0, 8 * PAGE_SIZE, IOMMU_READ);
	expect_mapped(f, b, SZ_4M, 3 * PAGE_SIZE, PAGE_SIZE, IOMMU_WRITE);
	KUNIT_EXPECT_EQ(test, 0, state(f, &m[1]));
	KUNIT_EXPECT_EQ(test, 1, f->exp->lists);

	unmap(f, &m[0]);
	unmap(f, &m[1]);
	unmap(f, &m[2]);
	KUNIT_EXPECT_EQ(test, 0UL, nr_ptes(a) + nr_ptes(b));
	KUNIT_EXPECT_EQ(test, 0, f->exp->lists);
}

/* A mapping made while revoked is recorded and filled at restore. */
static void test_map_while_revoked_filled_at_restore(struct kunit *test)
{
	struct fixture *f = fixture(test);
	struct mock_domain *md = mock_domain(test);
	struct dma_buf_iommu_map m = {};

	export(f, 4 * PAGE_SIZE, 1, 4 * PAGE_SIZE);
	attach(f);
	set_revoked(f, true);
	KUNIT_ASSERT_EQ(test, 0, map(f, &m, md, 0, 0, 4 * PAGE_SIZE,
				     IOMMU_READ));
	KUNIT_EXPECT_EQ(test, -ENODEV, state(f, &m));
	KUNIT_EXPECT_EQ(test, 0UL, nr_ptes(md));
	KUNIT_EXPECT_EQ(test, 0, f->exp->lists);
	KUNIT_EXPECT_STREQ(test, "iommu_mappings:\t1\niommu_unrestored:\t0\n",
			   iommu_fdinfo(f));

	set_revoked(f, false);
	KUNIT_EXPECT_EQ(test, 0, state(f, &m));
	expect_mapped(f, md, 0, 0, 4 * PAGE_SIZE, IOMMU_READ);

	/* Unmapped while revoked: nothing to take out of the domain */
	set_revoked(f, true);
	unmap(f, &m);
	set_revoked(f, false);
	KUNIT_EXPECT_EQ(test, 0UL, nr_ptes(md));
	KUNIT_EXPECT_EQ(test, 0, f->exp->lists);
}

/*
 * A restore that cannot map a record (page table allocation fails) marks
 * it with the error, counts it in fdinfo, maps the others, and the next
 * restore maps it.
 */
static void test_failed_restore_marked_reported_retried(struct kunit *test)
{
	struct fixture *f = fixture(test);
	struct mock_domain *md = mock_domain(test);
	struct dma_buf_iommu_map m[3] = {};
	unsigned int i;

	export(f, 4 * PAGE_SIZE, 1, 4 * PAGE_SIZE);
	attach(f);
	for (i = 0; i < 3; i++)
		KUNIT_ASSERT_EQ(test, 0, map(f, &m[i], md, i * SZ_1M, 0,
					     4 * PAGE_SIZE, IOMMU_READ));
	set_revoked(f, true);
	md->fail_nth = 2;
	set_revoked(f, false);
	KUNIT_EXPECT_EQ(test, 0, state(f, &m[0]));
	KUNIT_EXPECT_EQ(test, -ENOMEM, state(f, &m[1]));
	KUNIT_EXPECT_EQ(test, 0, state(f, &m[2]));
	KUNIT_EXPECT_EQ(test, 8UL, nr_ptes(md));
	KUNIT_EXPECT_STREQ(test, "iommu_mappings:\t3\niommu_unrestored:\t1\n",
			   iommu_fdinfo(f));

	/* Retried at the next restore */
	set_revoked(f, true);
	set_revoked(f, false);
	KUNIT_EXPECT_EQ(test, 0, state(f, &m[1]));
	expect_mapped(f, md, SZ_1M, 0, 4 * PAGE_SIZE, IOMMU_READ);
	KUNIT_EXPECT_STREQ(test, "iommu_mappings:\t3\niommu_unrestored:\t0\n",
			   iommu_fdinfo(f));

	/* The exporter fails to give its ranges: every record fails */
	set_revoked(f, true);
	f->exp->error = -ENOMEM;
	set_revoked(f, false);
	for (i = 0; i < 3; i++)
		KUNIT_EXPECT_EQ(test, -ENOMEM, state(f, &m[i]));
	KUNIT_EXPECT_EQ(test, 0UL, nr_ptes(md));
	KUNIT_EXPECT_EQ(test, 0, f->exp->lists);
	KUNIT_EXPECT_STREQ(test, "iommu_mappings:\t3\niommu_unrestored:\t3\n",
			   iommu_fdinfo(f));

	/* An IOMMU driver's -ENODEV is a failure, not a revoke */
	set_revoked(f, true);
	md->fail_nth = 1;
	md->fail_err = -ENODEV;
	set_revoked(f, false);
	KUNIT_EXPECT_EQ(test, -EIO, state(f, &m[0]));
	KUNIT_EXPECT_EQ(test, 0, state(f, &m[1]));
	KUNIT_EXPECT_STREQ(test, "iommu_mappings:\t3\niommu_unrestored:\t1\n",
			   iommu_fdinfo(f));

	/* A failed record unmapped while failed */
	unmap(f, &m[0]);
	KUNIT_EXPECT_STREQ(test, "iommu_mappings:\t2\niommu_unrestored:\t0\n",
			   iommu_fdinfo(f));
	unmap(f, &m[1]);
	unmap(f, &m[2]);
	KUNIT_EXPECT_EQ(test, 0UL, nr_ptes(md));
}

/* A first map that the IOMMU driver fails with -ENODEV: -EIO, no record. */
static void test_first_map_failure_leaves_no_record(struct kunit *test)
{
	struct fixture *f = fixture(test);
	struct mock_domain *md = mock_domain(test);
	struct dma_buf_iommu_map m = {};

	export(f, 4 * PAGE_SIZE, 2, 2 * PAGE_SIZE);
	attach(f);
	md->fail_nth = 2;
	md->fail_err = -ENODEV;
	KUNIT_EXPECT_EQ(test, -EIO, map(f, &m, md, 0, 0, 4 * PAGE_SIZE,
					IOMMU_READ));
	KUNIT_EXPECT_EQ(test, 0UL, nr_ptes(md));
	KUNIT_EXPECT_EQ(test, 0UL, md->unflushed);
	KUNIT_EXPECT_EQ(test, 0, f->exp->lists);
	KUNIT_EXPECT_EQ(test, 0U, f->attach->map_count);
}

/* Memory and IOVA both 2 MiB aligned: 2 MiB IOMMU pages. */
static void test_large_pages_where_aligned(struct kunit *test)
{
	struct fixture *f = fixture(test);
	struct mock_domain *md = mock_domain(test);
	struct dma_buf_iommu_map m = {};

	export(f, SZ_4M, 1, SZ_4M);
	attach(f);
	KUNIT_ASSERT_EQ(test, 0, map(f, &m, md, SZ_2M, 0, SZ_4M, IOMMU_READ));
	KUNIT_EXPECT_EQ(test, (size_t)SZ_2M, md->max_pgsize);
	unmap(f, &m);

	/* An IOVA 4 KiB off: 4 KiB pages only */
	md->max_pgsize = 0;
	KUNIT_ASSERT_EQ(test, 0, map(f, &m, md, SZ_2M + PAGE_SIZE, 0, SZ_2M,
				     IOMMU_READ));
	KUNIT_EXPECT_EQ(test, (size_t)PAGE_SIZE, md->max_pgsize);
	unmap(f, &m);
}

/*
 * The alignment an importer is told for an offset is the memory's, span
 * by span; while revoked there is none.  The list taken to answer is
 * given back.
 */
static void test_alignment_follows_memory(struct kunit *test)
{
	struct fixture *f = fixture(test);
	unsigned long base = 1UL << __ffs64(FAKE_MMIO);

	/* Span 0 at FAKE_MMIO + 2 MiB, span 1 at FAKE_MMIO */
	export(f, SZ_4M, 2, SZ_2M);
	attach(f);
	KUNIT_EXPECT_EQ(test, (unsigned long)SZ_2M, alignment(f, 0));
	KUNIT_EXPECT_EQ(test, PAGE_SIZE, alignment(f, PAGE_SIZE));
	KUNIT_EXPECT_EQ(test, base, alignment(f, SZ_2M));
	KUNIT_EXPECT_EQ(test, 0, f->exp->lists);

	set_revoked(f, true);
	KUNIT_EXPECT_EQ(test, 0UL, alignment(f, 0));
}

/* An exporter that gives System RAM as device memory is refused. */
static void test_system_ram_refused(struct kunit *test)
{
	struct fixture *f = fixture(test);
	struct mock_domain *md = mock_domain(test);
	struct dma_buf_iommu_map m = {};
	void *ram = kunit_kmalloc(test, PAGE_SIZE, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, ram);
	export(f, PAGE_SIZE, 1, PAGE_SIZE);
	f->exp->spans[0].addr = virt_to_phys(ram) & PAGE_MASK;
	attach(f);
	KUNIT_EXPECT_EQ(test, -EINVAL, map(f, &m, md, 0, 0, PAGE_SIZE,
					   IOMMU_READ));
	KUNIT_EXPECT_EQ(test, 0UL, nr_ptes(md));
	KUNIT_EXPECT_EQ(test, 0, f->exp->lists);
	KUNIT_EXPECT_EQ(test, 0U, f->attach->map_count);
}

/*
 * Set span @i of the exporter's next list to @addr + @len, map the whole
 * buffer of two pages: refused with -EINVAL, nothing mapped, the list
 * given back.
 */
static void expect_phys_refused(struct fixture *f, struct mock_domain *md,
				unsigned int i, phys_addr_t addr, u64 len,
				const char *why)
{
	struct kunit *test = f->test;
	struct dma_buf_iommu_map m = {};

	f->exp->spans[0].addr = FAKE_MMIO;
	f->exp->spans[0].len = PAGE_SIZE;
	f->exp->spans[1].addr = FAKE_MMIO + 4 * PAGE_SIZE;
	f->exp->spans[1].len = PAGE_SIZE;
	f->exp->spans[i].addr = addr;
	f->exp->spans[i].len = len;
	KUNIT_EXPECT_EQ_MSG(test, -EINVAL,
			    map(f, &m, md, 0, 0, 2 * PAGE_SIZE, IOMMU_READ),
			    "%s", why);
	KUNIT_EXPECT_EQ(test, 0UL, nr_ptes(md));
	KUNIT_EXPECT_EQ(test, 0, f->exp->lists);
}

/* Physical lists that break the rules of the DMA range lists too. */
static void test_bad_phys_lists_refused(struct kunit *test)
{
	struct fixture *f = fixture(test);
	struct mock_domain *md = mock_domain(test);
	phys_addr_t last_page = (phys_addr_t)~0 & PAGE_MASK;

	export(f, 2 * PAGE_SIZE, 2, PAGE_SIZE);
	attach(f);
	expect_phys_refused(f, md, 1, FAKE_MMIO + 512, PAGE_SIZE,
			    "address not page aligned");
	expect_phys_refused(f, md, 1, FAKE_MMIO + 4 * PAGE_SIZE, PAGE_SIZE / 2,
			    "length not page aligned, and short");
	expect_phys_refused(f, md, 1, FAKE_MMIO + 4 * PAGE_SIZE, 0,
			    "a zero-length range");
	expect_phys_refused(f, md, 1, FAKE_MMIO + 4 * PAGE_SIZE, 2 * PAGE_SIZE,
			    "longer than the buffer");
	expect_phys_refused(f, md, 1, last_page, 2 * PAGE_SIZE,
			    "wraps the physical address space");
	KUNIT_EXPECT_EQ(test, 0U, f->attach->map_count);
}

/* Bad parts of the buffer and IOVAs: -EINVAL, nothing recorded. */
static void test_bad_arguments_refused(struct kunit *test)
{
	struct fixture *f = fixture(test);
	struct mock_domain *md = mock_domain(test);
	struct dma_buf_iommu_map m = {};

	export(f, 4 * PAGE_SIZE, 1, 4 * PAGE_SIZE);
	attach(f);
	KUNIT_EXPECT_EQ(test, -EINVAL, map(f, &m, md, 0, 0, 0, IOMMU_READ));
	KUNIT_EXPECT_EQ(test, -EINVAL, map(f, &m, md, 0, 512, PAGE_SIZE,
					   IOMMU_READ));
	KUNIT_EXPECT_EQ(test, -EINVAL, map(f, &m, md, 512, 0, PAGE_SIZE,
					   IOMMU_READ));
	KUNIT_EXPECT_EQ(test, -EINVAL, map(f, &m, md, 0, 0, PAGE_SIZE + 512,
					   IOMMU_READ));
	KUNIT_EXPECT_EQ(test, -EINVAL, map(f, &m, md, 0, 3 * PAGE_SIZE,
					   2 * PAGE_SIZE, IOMMU_READ));
	KUNIT_EXPECT_EQ(test, -EINVAL, map(f, &m, md, 0, 5 * PAGE_SIZE,
					   PAGE_SIZE, IOMMU_READ));
	KUNIT_EXPECT_EQ(test, 0UL, nr_ptes(md) + md->map_calls);
	KUNIT_EXPECT_EQ(test, 0, f->exp->lists);
	KUNIT_EXPECT_EQ(test, 0U, f->attach->map_count);
}

/* The last page of a buffer of no page multiple is mapped whole. */
static void test_size_not_page_multiple(struct kunit *test)
{
	struct fixture *f = fixture(test);
	struct mock_domain *md = mock_domain(test);
	struct dma_buf_iommu_map m = {};

	export(f, 2 * PAGE_SIZE - 512, 1, 2 * PAGE_SIZE);
	attach(f);
	KUNIT_ASSERT_EQ(test, 0, map(f, &m, md, 0, 0, 2 * PAGE_SIZE,
				     IOMMU_READ));
	expect_mapped(f, md, 0, 0, 2 * PAGE_SIZE, IOMMU_READ);
	unmap(f, &m);
}

/*
 * An exporter without physical ranges, dynamic or static, cannot have an
 * IOMMU importer; a static one cannot have the op at all (the core maps a
 * static exporter's buffer at attach, for a device).
 */
static void test_exporter_without_phys_refused(struct kunit *test)
{
	static const struct dma_buf_ops ranges_only = {
		.pin = mock_pin,
		.unpin = mock_unpin,
		.map_dma_ranges = mock_map_ranges,
		.unmap_dma_ranges = mock_unmap_ranges,
		.release = mock_release,
	};
	static const struct dma_buf_ops static_ranges = {
		.map_dma_ranges = mock_map_ranges,
		.unmap_dma_ranges = mock_unmap_ranges,
		.release = mock_release,
	};
	const struct dma_buf_ops *ops[] = { &ranges_only, &static_ranges };
	struct fixture *f = fixture(test);
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ops); i++) {
		DEFINE_DMA_BUF_EXPORT_INFO(info);
		struct dma_buf_attachment *a;
		struct mock_exporter *exp;
		struct dma_buf *dmabuf;

		exp = kzalloc(sizeof(*exp), GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, exp);
		info.ops = ops[i];
		info.size = PAGE_SIZE;
		info.priv = exp;
		dmabuf = dma_buf_export(&info);
		if (IS_ERR(dmabuf))
			kfree(exp);
		KUNIT_ASSERT_FALSE(test, IS_ERR(dmabuf));
		KUNIT_ASSERT_EQ(test, 0,
				kunit_add_action_or_reset(test, put_dmabuf,
							  dmabuf));
		a = dma_buf_dynamic_attach(dmabuf, f->dev, &iommu_importer_ops,
					   &f->imp);
		KUNIT_EXPECT_EQ(test, -EOPNOTSUPP, PTR_ERR_OR_ZERO(a));
	}
}

/*
 * Whether a device reaches the memory through the importer's domains is
 * the exporter's answer for that device, the same while access is revoked:
 * the importer asks before the device and the memory meet in a domain.
 */
static void test_reachable_is_exporters_answer_per_device(struct kunit *test)
{
	struct fixture *f = fixture(test);
	struct device *other;

	other = kunit_device_register(test, "dma-buf-iommu-test-other");
	KUNIT_ASSERT_FALSE(test, IS_ERR(other));
	export(f, SZ_64K, 1, SZ_64K);
	attach(f);
	f->exp->unreachable = other;

	KUNIT_EXPECT_TRUE(test, dma_buf_iommu_reachable(f->attach, f->dev));
	KUNIT_EXPECT_FALSE(test, dma_buf_iommu_reachable(f->attach, other));
	set_revoked(f, true);
	KUNIT_EXPECT_TRUE(test, dma_buf_iommu_reachable(f->attach, f->dev));
	KUNIT_EXPECT_FALSE(test, dma_buf_iommu_reachable(f->attach, other));
	/* Asking takes nothing from the exporter */
	KUNIT_EXPECT_EQ(test, 0, f->exp->list_calls);
}

/*
 * The physical range ops and iommu_reachable come together, and only a
 * dynamic exporter has them: an exporter that gives the memory but cannot
 * say who reaches it is refused at export (dma_buf_export() warns).
 */
static void test_phys_ops_come_together(struct kunit *test)
{
	struct dma_buf_ops ops = mock_ops;

	KUNIT_EXPECT_TRUE(test, dma_buf_phys_ops_valid(&ops));
	ops.iommu_reachable = NULL;
	KUNIT_EXPECT_FALSE(test, dma_buf_phys_ops_valid(&ops));
	ops.get_phys_ranges = NULL;
	ops.put_phys_ranges = NULL;
	KUNIT_EXPECT_TRUE(test, dma_buf_phys_ops_valid(&ops));
	ops.iommu_reachable = mock_iommu_reachable;
	KUNIT_EXPECT_FALSE(test, dma_buf_phys_ops_valid(&ops));
	ops = mock_ops;
	ops.put_phys_ranges = NULL;
	KUNIT_EXPECT_FALSE(test, dma_buf_phys_ops_valid(&ops));
	ops = mock_ops;
	ops.pin = NULL;
	ops.unpin = NULL;
	KUNIT_EXPECT_FALSE(test, dma_buf_phys_ops_valid(&ops));
}

static const unsigned int scale_params[] = { 1, 100, 10000 };

static void scale_desc(const unsigned int *n, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "N=%u", *n);
}

KUNIT_ARRAY_PARAM(scale, scale_params, scale_desc);

/*
 * N one-page mappings: revoke, restore and unmapping them all take one
 * domain call each and ask the exporter for its list once (times are in
 * make bench).
 */
static void test_one_domain_call_per_record(struct kunit *test)
{
	unsigned int n = *(const unsigned int *)test->param_value, i;
	struct fixture *f = fixture(test);
	struct mock_domain *md = mock_domain(test);
	struct dma_buf_iommu_map *m;

	m = kunit_kcalloc(test, n, sizeof(*m), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, m);
	export(f, 4 * PAGE_SIZE, 1, 4 * PAGE_SIZE);
	attach(f);
	for (i = 0; i < n; i++)
		KUNIT_ASSERT_EQ(test, 0, map(f, &m[i], md, i * PAGE_SIZE,
					     (i % 4) * PAGE_SIZE, PAGE_SIZE,
					     IOMMU_READ));
	KUNIT_EXPECT_EQ(test, (unsigned long)n, md->map_calls);
	KUNIT_EXPECT_EQ(test, 1, f->exp->list_calls);

	set_revoked(f, true);
	KUNIT_EXPECT_EQ(test, (unsigned long)n, md->unmap_calls);
	KUNIT_EXPECT_EQ(test, 0UL, nr_ptes(md));
	set_revoked(f, false);
	KUNIT_EXPECT_EQ(test, 2UL * n, md->map_calls);
	KUNIT_EXPECT_EQ(test, 2, f->exp->list_calls);
	KUNIT_EXPECT_EQ(test, (unsigned long)n, nr_ptes(md));

	for (i = 0; i < n; i++)
		unmap(f, &m[n - 1 - i]);
	KUNIT_EXPECT_EQ(test, 2UL * n, md->unmap_calls);
	KUNIT_EXPECT_EQ(test, 0UL, nr_ptes(md));
	KUNIT_EXPECT_EQ(test, 0, f->exp->lists);
}

static struct kunit_case dma_buf_iommu_cases[] = {
	KUNIT_CASE(test_map_follows_spans_uncached),
	KUNIT_CASE(test_revoke_unmaps_before_notify_restore_maps_again),
	KUNIT_CASE(test_map_while_revoked_filled_at_restore),
	KUNIT_CASE(test_failed_restore_marked_reported_retried),
	KUNIT_CASE(test_first_map_failure_leaves_no_record),
	KUNIT_CASE(test_large_pages_where_aligned),
	KUNIT_CASE(test_alignment_follows_memory),
	KUNIT_CASE(test_system_ram_refused),
	KUNIT_CASE(test_bad_arguments_refused),
	KUNIT_CASE(test_bad_phys_lists_refused),
	KUNIT_CASE(test_size_not_page_multiple),
	KUNIT_CASE(test_exporter_without_phys_refused),
	KUNIT_CASE(test_reachable_is_exporters_answer_per_device),
	KUNIT_CASE(test_phys_ops_come_together),
	KUNIT_CASE_PARAM(test_one_domain_call_per_record, scale_gen_params),
	{}
};

static struct kunit_suite dma_buf_iommu_suite = {
	.name = "dma-buf-iommu",
	.init = dma_buf_iommu_test_init,
	.test_cases = dma_buf_iommu_cases,
};

kunit_test_suite(dma_buf_iommu_suite);

MODULE_DESCRIPTION("KUnit tests for dma-buf IOMMU-domain mappings");
MODULE_LICENSE("GPL");
