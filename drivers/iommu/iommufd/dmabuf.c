// SPDX-License-Identifier: GPL-2.0-only
/*
 * IOMMU_IOAS_MAP_FILE of a dma-buf of device memory.
 *
 * The exporter gives the memory by CPU physical address
 * (dma_buf_map_phys_ranges()), every range of it, and the pages of an area
 * are mapped straight into each domain of its io_pagetable, uncached, with
 * the largest IOMMU pages the alignment allows.  Nothing is pinned or
 * accounted: the memory is the exporter's, and it may revoke it.
 *
 * Each (domain, area) that holds the pages is tracked, under pages->mutex,
 * whether or not the memory is accessible right now.  The exporter's
 * move_notify, called with the reservation lock held, unmaps every tracked
 * IOVA range (iommu_unmap() flushes the IOTLB) before it gives the ranges
 * back, so no DMA reaches the memory once the exporter's revoke returns.
 * Then it asks for the ranges again: when access has come back they are
 * mapped into every tracked domain again, so the IOAS mapping is restored
 * without userspace remapping.
 *
 * Locking: the reservation lock, then pages->mutex (move_notify; also vfio
 * holds its memory_lock around both).  Releasing the pages takes the
 * reservation lock under the io_pagetable's domains_rwsem (unmap), so no
 * path may take an io_pagetable lock under the reservation lock; none
 * here does.
 */
#include <linux/dma-buf.h>
#include <linux/dma-buf-phys.h>
#include <linux/dma-resv.h>
#include <linux/iommu.h>
#include <linux/slab.h>

#include "io_pagetable.h"

MODULE_IMPORT_NS(DMA_BUF);
MODULE_IMPORT_NS(DMA_BUF_PHYS);

/**
 * struct iopt_pages_dmabuf - the dma-buf side of IOPT_ADDRESS_DMABUF pages
 * @attach: the attachment, as an importer of physical ranges
 * @phys: the memory while it is accessible, NULL while revoked; changed
 *	under the reservation lock and pages->mutex
 * @tracker: the (domain, area) pairs holding the pages, of struct
 *	iopt_dmabuf_track, under pages->mutex
 * @released: the pages are going away: a move_notify that comes before the
 *	detach must not map again; under the reservation lock and pages->mutex
 */
struct iopt_pages_dmabuf {
	struct dma_buf_attachment *attach;
	const struct dma_buf_phys_ranges *phys;
	struct list_head tracker;
	bool released;
};

struct iopt_dmabuf_track {
	struct list_head elm;
	struct iommu_domain *domain;
	struct iopt_area *area;
};

/*
 * pages->mutex of dma-buf pages is taken under a reservation lock, which
 * fault handlers take under mmap_lock, while pages->mutex of user pages is
 * held across pin_user_pages(): separate classes, or lockdep would see a
 * cycle that no single iopt_pages can close.  It holds because dma-buf
 * pages never reach the pfn_reader, which pins under pages->mutex.
 */
static struct lock_class_key iopt_dmabuf_mutex_key;

/* Unmap @len bytes from @iova; the IOTLB is flushed when this returns. */
static void unmap_range(struct iommu_domain *domain, unsigned long iova,
			unsigned long len)
{
	size_t unmapped = iommu_unmap(domain, iova, len);

	WARN_ON(unmapped != len);
}

/*
 * Map @area's part of the memory into @domain at the area's IOVA: the
 * ranges from the area's byte offset, back to back.
 */
static int map_area(struct iopt_pages *pages, struct iopt_area *area,
		    struct iommu_domain *domain)
{
	const struct dma_buf_phys_ranges *phys = pages->dmabuf->phys;
	int prot = (area->iommu_prot & ~IOMMU_CACHE) | IOMMU_MMIO;
	u64 offset = pages->start + iopt_area_index(area) * PAGE_SIZE;
	unsigned long iova = iopt_area_iova(area);
	unsigned long left = iopt_area_length(area);
	unsigned int i;
	int rc;

	for (i = 0; i < phys->nr && left; i++) {
		const struct dma_buf_phys_range *r = &phys->ranges[i];
		u64 len;

		if (offset >= r->len) {
			offset -= r->len;
			continue;
		}
		len = min_t(u64, r->len - offset, left);
		rc = iommu_map(domain, iova, r->addr + offset, len, prot,
			       GFP_KERNEL_ACCOUNT);
		if (rc) {
			if (iova != iopt_area_iova(area))
				unmap_range(domain, iopt_area_iova(area),
					    iova - iopt_area_iova(area));
			return rc;
		}
		iova += len;
		left -= len;
		offset = 0;
	}
	/* dma_buf_map_phys_ranges() checked that the ranges cover the buffer */
	WARN_ON(left);
	return 0;
}

static struct iopt_dmabuf_track *find_track(struct iopt_pages *pages,
					    struct iopt_area *area,
					    struct iommu_domain *domain)
{
	struct iopt_dmabuf_track *track;

	list_for_each_entry(track, &pages->dmabuf->tracker, elm)
		if (track->area == area && track->domain == domain)
			return track;
	return NULL;
}

/*
 * Put @area of @pages into @domain.  While the memory is revoked nothing
 * is mapped, but the pair is tracked and gets the mapping when access
 * comes back.
 */
static int fill_domain(struct iopt_pages *pages, struct iopt_area *area,
		       struct iommu_domain *domain)
{
	struct iopt_dmabuf_track *track;
	int rc;

	lockdep_assert_held(&pages->mutex);

	track = kzalloc(sizeof(*track), GFP_KERNEL_ACCOUNT);
	if (!track)
		return -ENOMEM;
	if (pages->dmabuf->phys) {
		rc = map_area(pages, area, domain);
		if (rc) {
			kfree(track);
			return rc;
		}
	}
	track->area = area;
	track->domain = domain;
	list_add_tail(&track->elm, &pages->dmabuf->tracker);
	return 0;
}

/**
 * iopt_dmabuf_fill_domain() - put an area of dma-buf pages into a domain
 * @area: the area, holding its pages
 * @domain: the domain
 *
 * Called with pages->mutex held, when a domain is attached.
 *
 * Return: 0, or the error of iommu_map() or -ENOMEM with nothing changed.
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
 * Called with pages->mutex held.  Unmaps the area's IOVA range from
 * @domain if the memory is mapped there, and stops tracking the pair.
 */
void iopt_dmabuf_unfill_domain(struct iopt_area *area,
			       struct iopt_pages *pages,
			       struct iommu_domain *domain)
{
	struct iopt_dmabuf_track *track;

	lockdep_assert_held(&pages->mutex);

	track = find_track(pages, area, domain);
	if (WARN_ON(!track))
		return;
	if (pages->dmabuf->phys)
		unmap_range(domain, iopt_area_iova(area),
			    iopt_area_length(area));
	list_del(&track->elm);
	kfree(track);
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
 * Unmap the tracked pairs before @stop (all when NULL) and give the ranges
 * back.  @attach is passed in: a move_notify can come before
 * dma_buf_dynamic_attach() has returned it.
 */
static void put_phys(struct iopt_pages *pages,
		     struct dma_buf_attachment *attach,
		     struct iopt_dmabuf_track *stop)
{
	struct iopt_pages_dmabuf *dmabuf = pages->dmabuf;
	struct iopt_dmabuf_track *track;

	lockdep_assert_held(&pages->mutex);

	if (!dmabuf->phys)
		return;
	list_for_each_entry(track, &dmabuf->tracker, elm) {
		if (track == stop)
			break;
		unmap_range(track->domain, iopt_area_iova(track->area),
			    iopt_area_length(track->area));
	}
	dma_buf_unmap_phys_ranges(attach, dmabuf->phys);
	dmabuf->phys = NULL;
}

/* Take the ranges and map them into every tracked domain, or nowhere. */
static int get_phys(struct iopt_pages *pages,
		    struct dma_buf_attachment *attach)
{
	struct iopt_pages_dmabuf *dmabuf = pages->dmabuf;
	const struct dma_buf_phys_ranges *phys;
	struct iopt_dmabuf_track *track;
	int rc;

	lockdep_assert_held(&pages->mutex);

	phys = dma_buf_map_phys_ranges(attach);
	if (IS_ERR(phys))
		return PTR_ERR(phys);
	dmabuf->phys = phys;
	list_for_each_entry(track, &dmabuf->tracker, elm) {
		rc = map_area(pages, track->area, track->domain);
		if (rc) {
			/* map_area() left nothing of @track mapped */
			put_phys(pages, attach, track);
			return rc;
		}
	}
	return 0;
}

/*
 * The exporter revoked or restored access (device memory given by physical
 * address never moves).  Unmap everything, then map again if it can be.
 */
static void iopt_dmabuf_move_notify(struct dma_buf_attachment *attach)
{
	struct iopt_pages *pages = attach->importer_priv;
	int rc = 0;

	mutex_lock(&pages->mutex);
	put_phys(pages, attach, NULL);
	if (!pages->dmabuf->released)
		rc = get_phys(pages, attach);
	mutex_unlock(&pages->mutex);
	if (rc && rc != -ENODEV)
		pr_warn_ratelimited("iommufd: dma-buf %s stays unmapped after its exporter restored access: %d\n",
				    attach->dmabuf->exp_name, rc);
}

static const struct dma_buf_attach_ops iopt_dmabuf_attach_ops = {
	.allow_peer2peer = true,
	.allow_revoke = true,
	.map_types = BIT(DMA_BUF_MAP_PHYS),
	.move_notify = iopt_dmabuf_move_notify,
};

/**
 * iopt_alloc_dmabuf_pages() - pages of a dma-buf of device memory
 * @dmabuf: the dma-buf
 * @start: byte offset of the first byte; page aligned
 * @length: number of bytes; page aligned
 * @writable: whether DMA may write
 *
 * Attaches to @dmabuf as an importer of physical ranges and takes the
 * ranges.  The pages hold a reference on the dma-buf's file, dropped by
 * iopt_release_pages().
 *
 * Return: the pages, or an ERR_PTR: -EINVAL for an unaligned or empty
 * range or one past the end of the buffer, -EOVERFLOW if it wraps,
 * -EOPNOTSUPP if the exporter cannot give physical ranges or refuses this
 * importer (for vfio-pci: its host bridge does not forward P2P), -ENODEV
 * while access is revoked, or -ENOMEM.
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
	if (end > dmabuf->size)
		return ERR_PTR(-EINVAL);

	pages = iopt_alloc_pages_common(start, length, writable);
	if (IS_ERR(pages))
		return pages;
	lockdep_set_class(&pages->mutex, &iopt_dmabuf_mutex_key);
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
	INIT_LIST_HEAD(&pages->dmabuf->tracker);

	attach = dma_buf_dynamic_attach(dmabuf, iommufd_global_device(),
					&iopt_dmabuf_attach_ops, pages);
	if (IS_ERR(attach)) {
		rc = PTR_ERR(attach);
		goto err_put;
	}
	pages->dmabuf->attach = attach;

	/* Unless a move_notify since the attach has already taken them */
	dma_resv_lock(dmabuf->resv, NULL);
	mutex_lock(&pages->mutex);
	rc = pages->dmabuf->phys ? 0 : get_phys(pages, attach);
	mutex_unlock(&pages->mutex);
	dma_resv_unlock(dmabuf->resv);
	if (rc)
		goto err_put;
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
	if (dmabuf->attach) {
		struct dma_buf *buf = dmabuf->attach->dmabuf;

		/* No restore between here and the detach */
		dma_resv_lock(buf->resv, NULL);
		mutex_lock(&pages->mutex);
		WARN_ON(!list_empty(&dmabuf->tracker));
		put_phys(pages, dmabuf->attach, NULL);
		dmabuf->released = true;
		mutex_unlock(&pages->mutex);
		dma_resv_unlock(buf->resv);
		dma_buf_detach(buf, dmabuf->attach);
	}
	kfree(dmabuf);
}

/**
 * iopt_dmabuf_align_hint() - where a mapping of the pages wants its IOVA
 * @pages: the pages
 * @start_byte: offset of the mapping in the pages
 *
 * An IOVA aligned like the physical address gets the largest IOMMU pages.
 *
 * Return: the physical address of @start_byte, or its offset in the
 * dma-buf while access is revoked.
 */
unsigned long iopt_dmabuf_align_hint(struct iopt_pages *pages,
				     unsigned long start_byte)
{
	const struct dma_buf_phys_ranges *phys;
	u64 offset = pages->start + start_byte;
	unsigned long hint = offset;
	unsigned int i;

	mutex_lock(&pages->mutex);
	phys = pages->dmabuf->phys;
	for (i = 0; phys && i < phys->nr; i++) {
		if (offset < phys->ranges[i].len) {
			hint = phys->ranges[i].addr + offset;
			break;
		}
		offset -= phys->ranges[i].len;
	}
	mutex_unlock(&pages->mutex);
	return hint;
}
