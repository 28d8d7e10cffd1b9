// SPDX-License-Identifier: GPL-2.0-only
/*
 * IOMMU_IOAS_MAP_FILE of a dma-buf of device memory.
 *
 * iommufd attaches as an IOMMU-domain importer and asks the dma-buf core
 * to map each (area, domain) pair: the area's part of the dma-buf at the
 * area's IOVA.  The core takes the memory from the exporter by physical
 * address, maps it uncached with the largest IOMMU pages the alignment
 * allows, unmaps it when the exporter revokes access, before the revoke
 * returns, and maps it again when access comes back; a mapping made while
 * access is revoked is filled then.  iommufd keeps only the core's record
 * of each pair, on the area, so that unfilling a domain finds it among the
 * area's domains.  Nothing is pinned or accounted: the memory is the
 * exporter's, and it may revoke it.
 *
 * Locking, outermost first:
 *  - reach checks: the IOAS's mutex, an iommufd group's lock, at attach
 *    the io_pagetable's iova_rwsem (iopt_dmabuf_check_areas()), then the
 *    iommu_group's mutex;
 *  - filling and unfilling: the io_pagetable's rwsems, pages->mutex, then
 *    the reservation lock.
 * The exporter revokes and restores with the reservation lock held (vfio:
 * under its memory_lock) and the core does the unmapping and mapping
 * without calling into iommufd, so no iommufd lock is taken under either.
 */
#include <linux/dma-buf.h>
#include <linux/dma-buf-iommu.h>
#include <linux/dma-resv.h>
#include <linux/iommu.h>
#include <linux/slab.h>

#include "io_pagetable.h"

MODULE_IMPORT_NS(DMA_BUF);

/**
 * struct iopt_pages_dmabuf - the dma-buf side of IOPT_ADDRESS_DMABUF pages
 * @attach: the attachment, of type DMA_BUF_MAP_IOMMU
 */
struct iopt_pages_dmabuf {
	struct dma_buf_attachment *attach;
};

/**
 * struct iopt_dmabuf_map - an area of dma-buf pages in one domain
 * @map: the dma-buf core's record
 * @elm: entry in the area's dmabuf_maps, under pages->mutex
 */
struct iopt_dmabuf_map {
	struct dma_buf_iommu_map map;
	struct hlist_node elm;
};

static struct dma_resv *pages_resv(struct iopt_pages *pages)
{
	return pages->dmabuf->attach->dmabuf->resv;
}

/*
 * Have the core map @area's part of the dma-buf into @domain, or record
 * it to be mapped when access comes back.
 */
static int fill_domain(struct iopt_pages *pages, struct iopt_area *area,
		       struct iommu_domain *domain)
{
	struct iopt_dmabuf_map *m;
	int rc;

	lockdep_assert_held(&pages->mutex);

	m = kzalloc(sizeof(*m), GFP_KERNEL_ACCOUNT);
	if (!m)
		return -ENOMEM;
	m->map.domain = domain;
	m->map.iova = iopt_area_iova(area);
	m->map.offset = pages->start + iopt_area_index(area) * PAGE_SIZE;
	m->map.length = iopt_area_length(area);
	m->map.prot = area->iommu_prot;

	dma_resv_lock(pages_resv(pages), NULL);
	rc = dma_buf_iommu_map(pages->dmabuf->attach, &m->map);
	dma_resv_unlock(pages_resv(pages));
	if (rc) {
		kfree(m);
		return rc;
	}
	hlist_add_head(&m->elm, &area->dmabuf_maps);
	return 0;
}

/**
 * iopt_dmabuf_fill_domain() - put an area of dma-buf pages into a domain
 * @area: the area, holding its pages
 * @domain: the domain
 *
 * Called with pages->mutex held, when a domain is attached.
 *
 * Return: 0, or an error of dma_buf_iommu_map() with nothing changed.
 */
int iopt_dmabuf_fill_domain(struct iopt_area *area, struct iommu_domain *domain)
{
	return fill_domain(area->pages, area, domain);
}

/**
 * iopt_dmabuf_unfill_domain() - take an area of dma-buf pages out of a domain
 * @area: the area
 * @pages: its pages (area->pages may already be NULL)
 * @domain: the domain
 *
 * Called with pages->mutex held.  Once this returns nothing of the area is
 * mapped in @domain and the IOTLB is synced.
 */
void iopt_dmabuf_unfill_domain(struct iopt_area *area,
			       struct iopt_pages *pages,
			       struct iommu_domain *domain)
{
	struct iopt_dmabuf_map *m;

	lockdep_assert_held(&pages->mutex);

	hlist_for_each_entry(m, &area->dmabuf_maps, elm) {
		if (m->map.domain != domain)
			continue;
		dma_resv_lock(pages_resv(pages), NULL);
		dma_buf_iommu_unmap(pages->dmabuf->attach, &m->map);
		dma_resv_unlock(pages_resv(pages));
		hlist_del(&m->elm);
		kfree(m);
		return;
	}
	WARN_ON_ONCE(true);
}

/**
 * iopt_dmabuf_fill_domains() - put a new area of dma-buf pages in its domains
 * @area: the area, not yet holding @pages
 * @pages: its pages
 *
 * As iopt_area_fill_domains(): every domain of the area's io_pagetable,
 * all or none.
 *
 * Return: 0 or an error of iopt_dmabuf_fill_domain().
 */
int iopt_dmabuf_fill_domains(struct iopt_area *area, struct iopt_pages *pages)
{
	struct iommu_domain *domain, *undo;
	unsigned long index, undo_index;
	int rc = 0;

	lockdep_assert_held(&area->iopt->domains_rwsem);

	mutex_lock(&pages->mutex);
	xa_for_each(&area->iopt->domains, index, domain) {
		rc = fill_domain(pages, area, domain);
		if (rc)
			break;
	}
	if (rc) {
		xa_for_each(&area->iopt->domains, undo_index, undo) {
			if (undo_index == index)
				break;
			iopt_dmabuf_unfill_domain(area, pages, undo);
		}
	} else {
		area->storage_domain = xa_load(&area->iopt->domains, 0);
		interval_tree_insert(&area->pages_node, &pages->domains_itree);
	}
	mutex_unlock(&pages->mutex);
	return rc;
}

/**
 * iopt_dmabuf_unfill_domains() - take an area of dma-buf pages out of its
 *	domains
 * @area: the area, no longer holding @pages
 * @pages: its pages
 */
void iopt_dmabuf_unfill_domains(struct iopt_area *area,
				struct iopt_pages *pages)
{
	struct iommu_domain *domain;
	unsigned long index;

	lockdep_assert_held(&area->iopt->domains_rwsem);

	mutex_lock(&pages->mutex);
	if (area->storage_domain) {
		xa_for_each(&area->iopt->domains, index, domain)
			iopt_dmabuf_unfill_domain(area, pages, domain);
		interval_tree_remove(&area->pages_node, &pages->domains_itree);
		area->storage_domain = NULL;
	}
	mutex_unlock(&pages->mutex);
}

/*
 * The exporter revoked access.  The core has unmapped every domain
 * mapping of the attachment already and maps them again when access comes
 * back: nothing is left for iommufd to do.
 */
static void iopt_dmabuf_move_notify(struct dma_buf_attachment *attach)
{
}

static const struct dma_buf_attach_ops iopt_dmabuf_attach_ops = {
	.allow_peer2peer = true,
	.allow_revoke = true,
	.map_types = BIT(DMA_BUF_MAP_IOMMU),
	.move_notify = iopt_dmabuf_move_notify,
};

/**
 * iopt_alloc_dmabuf_pages() - pages of a dma-buf of device memory
 * @dmabuf: the dma-buf
 * @start: byte offset of the first byte; page aligned
 * @length: number of bytes; page aligned
 * @writable: whether DMA may write
 *
 * Attaches to @dmabuf as an IOMMU-domain importer; whether access is
 * revoked right now does not matter.  The pages hold a reference on the
 * dma-buf's file, dropped by iopt_release_pages().
 *
 * Return: the pages, or an ERR_PTR: -EINVAL for an unaligned or empty
 * range or one past the buffer's last page, -EOVERFLOW if it wraps,
 * -EOPNOTSUPP if the exporter cannot give physical ranges or refuses this
 * importer, or -ENOMEM.
 */
struct iopt_pages *iopt_alloc_dmabuf_pages(struct dma_buf *dmabuf, u64 start,
					   unsigned long length, bool writable)
{
	struct dma_buf_attachment *attach;
	struct iopt_pages *pages;
	u64 end;
	int rc;

	if (!PAGE_ALIGNED(start) || !PAGE_ALIGNED(length))
		return ERR_PTR(-EINVAL);
	if (check_add_overflow(start, (u64)length, &end))
		return ERR_PTR(-EOVERFLOW);
	/* The last page of a buffer of no page multiple is mapped whole */
	if (end > PAGE_ALIGN((u64)dmabuf->size))
		return ERR_PTR(-EINVAL);

	pages = iopt_alloc_pages_common(start, length, writable);
	if (IS_ERR(pages))
		return pages;
	pages->type = IOPT_ADDRESS_DMABUF;
	pages->file = get_file(dmabuf->file);
	pages->start = start;
	/* Nothing is pinned that the user could be charged for */
	pages->account_mode = IOPT_PAGES_ACCOUNT_NONE;
	pages->dmabuf = kzalloc(sizeof(*pages->dmabuf), GFP_KERNEL_ACCOUNT);
	if (!pages->dmabuf) {
		rc = -ENOMEM;
		goto err_put;
	}

	attach = dma_buf_dynamic_attach(dmabuf, iommufd_global_device(),
					&iopt_dmabuf_attach_ops, pages);
	if (IS_ERR(attach)) {
		rc = PTR_ERR(attach);
		goto err_put;
	}
	pages->dmabuf->attach = attach;
	return pages;

err_put:
	iopt_put_pages(pages);
	return ERR_PTR(rc);
}

/**
 * iopt_dmabuf_release() - the dma-buf part of iopt_release_pages()
 * @pages: the pages, which no area holds any more
 */
void iopt_dmabuf_release(struct iopt_pages *pages)
{
	struct iopt_pages_dmabuf *dmabuf = pages->dmabuf;

	if (!dmabuf)
		return;
	if (dmabuf->attach)
		dma_buf_detach(dmabuf->attach->dmabuf, dmabuf->attach);
	kfree(dmabuf);
}

/**
 * iopt_dmabuf_align_hint() - where a mapping of the pages wants its IOVA
 * @pages: the pages
 * @start_byte: offset of the mapping in the pages
 *
 * An IOVA aligned like the memory's physical address gets the largest
 * IOMMU pages.
 *
 * Return: a value whose alignment the IOVA should share, or 0 for no
 * preference while access is revoked.
 */
unsigned long iopt_dmabuf_align_hint(struct iopt_pages *pages,
				     unsigned long start_byte)
{
	unsigned long align;

	dma_resv_lock(pages_resv(pages), NULL);
	align = dma_buf_iommu_alignment(pages->dmabuf->attach,
					pages->start + start_byte);
	dma_resv_unlock(pages_resv(pages));
	return align;
}

static int device_reaches(struct device *dev, void *data)
{
	struct iopt_pages *pages = data;

	return dma_buf_iommu_reachable(pages->dmabuf->attach, dev) ?
	       0 : -EOPNOTSUPP;
}

/**
 * iopt_dmabuf_check_group() - may a group's devices reach a dma-buf
 * @pages: dma-buf pages
 * @group: an iommu_group whose devices use, or are about to use, a domain
 *	that maps @pages
 *
 * Every device of the group, bound to iommufd or not, shares its domain.
 * The exporter is asked under the caller's locks and the group's mutex.
 *
 * Return: 0, or -EOPNOTSUPP if the exporter says one of them cannot reach
 * the memory through an IOMMU.
 */
int iopt_dmabuf_check_group(struct iopt_pages *pages, struct iommu_group *group)
{
	return iommu_group_for_each_dev(group, pages, device_reaches);
}

/**
 * iopt_dmabuf_check_areas() - may a group's devices reach every dma-buf
 *	mapped in an io_pagetable
 * @iopt: the io_pagetable of an IOAS, whose mutex the caller holds, so no
 *	dma-buf area is added meanwhile
 * @group: an iommu_group about to use a domain of @iopt
 *
 * Return: 0, or -EOPNOTSUPP as iopt_dmabuf_check_group().
 */
int iopt_dmabuf_check_areas(struct io_pagetable *iopt, struct iommu_group *group)
{
	struct dma_buf *checked = NULL;
	struct iopt_area *area;
	int rc = 0;

	down_read(&iopt->iova_rwsem);
	for (area = iopt_area_iter_first(iopt, 0, ULONG_MAX); area && !rc;
	     area = iopt_area_iter_next(area, 0, ULONG_MAX)) {
		struct iopt_pages *pages = area->dmabuf_pages;

		/*
		 * Also an area being unmapped, still in its domains.  Reach
		 * is the dma-buf's, and areas of one dma-buf (its copies, or
		 * a VMM's maps of it) usually lie side by side.
		 */
		if (!pages || pages->dmabuf->attach->dmabuf == checked)
			continue;
		checked = pages->dmabuf->attach->dmabuf;
		rc = iopt_dmabuf_check_group(pages, group);
	}
	up_read(&iopt->iova_rwsem);
	return rc;
}
