// SPDX-License-Identifier: GPL-2.0
/*
 * IOMMU-domain mappings of dma-bufs, made by the core for importers that
 * own IOMMU page tables.
 */
#include <kunit/visibility.h>
#include <linux/dma-buf.h>
#include <linux/dma-buf-iommu.h>
#include <linux/dma-buf-phys.h>
#include <linux/dma-resv.h>
#include <linux/iommu.h>
#include <linux/ioport.h>
#include <linux/memcontrol.h>
#include <linux/overflow.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "dma-buf-iommu-core.h"
#include "dma-buf-ranges-core.h"

/**
 * DOC: IOMMU-domain mappings
 *
 * A device importer maps a dma-buf for itself and gets DMA addresses.  An
 * importer that owns IOMMU page tables, iommufd, maps the memory for
 * whichever devices are attached to those tables, now or later; what it
 * needs is the memory mapped into an IOMMU domain at an IOVA of its
 * choosing.  The core does that for it, so the memory's CPU physical
 * address is seen by the exporter and the core only:
 *
 * - The importer asks for %DMA_BUF_MAP_IOMMU at attach, as its only type,
 *   with &dma_buf_attach_ops.allow_peer2peer and allow_revoke.  The
 *   exporter must have &dma_buf_ops.get_phys_ranges (-EOPNOTSUPP
 *   otherwise).
 * - Which devices will use the importer's page tables is the importer's
 *   to know, and changes as devices come and go: before it maps the
 *   memory into a domain that devices use, and before it lets a device
 *   use a domain that maps the memory, it asks dma_buf_iommu_reachable()
 *   for each such device, and refuses what the exporter does not reach.
 *   A PCI exporter answers by the host bridges of both ends
 *   (pci_p2pdma_host_bridge_forwards()).
 * - The importer fills in a &struct dma_buf_iommu_map (domain, IOVA, part
 *   of the buffer, read/write) and calls dma_buf_iommu_map().  The core
 *   takes the physical ranges from the exporter, refuses any that is
 *   System RAM, maps them back to back with IOMMU_MMIO, never IOMMU_CACHE,
 *   at the largest IOMMU pages the alignment allows, and records the
 *   mapping.  dma_buf_iommu_unmap() removes it; every record is gone
 *   before the importer detaches.
 * - Revoke is the core's: dma_buf_move_notify(), which the exporter calls
 *   after it has taken access away, unmaps every recorded mapping of the
 *   dma-buf, with the IOTLB synced, and gives the ranges back before it
 *   calls the importer's move_notify, which has nothing left to undo.  So
 *   no DMA through the importer's domains reaches the memory once the
 *   exporter's revoke returns, whatever the importer does.
 * - Restore is the core's too: the exporter calls dma_buf_restore_mappings()
 *   when access is back (the memory is at the same address: it never
 *   moves), and the core maps every record again, charging the page
 *   tables to the memory cgroup of the task that made the mapping.  A
 *   record that cannot be mapped is marked with the error, counted in the
 *   dma-buf's fdinfo ("iommu_unrestored"), reported by
 *   dma_buf_iommu_map_state() and retried at the next restore.  Other
 *   importers get no restore notice: they map again when they next need
 *   to.
 * - A mapping made while access is revoked is recorded and mapped at the
 *   next restore, so one model holds whenever the importer maps.
 * - The importer functions are exported to iommufd alone, with
 *   EXPORT_SYMBOL_GPL_FOR_MODULES().  6.12's module loader treats that as
 *   an ordinary namespace ("module:iommufd", which this KUnit test imports
 *   too), so on 6.12 the restriction holds by review, like the rule that
 *   only the core calls &dma_buf_ops.get_phys_ranges: the ops are public.
 *
 * Unmap is O(1) per record and revoke and restore O(N) in the records,
 * with a cond_resched() between records: everything is under the
 * reservation lock, which the exporter holds around dma_buf_move_notify()
 * and dma_buf_restore_mappings() in process context.
 */

/**
 * struct dma_buf_iommu_attach - the core's state of a %DMA_BUF_MAP_IOMMU
 *	attachment, under the reservation lock
 * @phys: the exporter's ranges while some record needs them and access is
 *	allowed; NULL otherwise
 * @maps: the records, &struct dma_buf_iommu_map.node
 * @nr_failed: records whose last restore failed
 */
struct dma_buf_iommu_attach {
	struct dma_buf_phys_ranges *phys;
	struct list_head maps;
	unsigned int nr_failed;
};

/**
 * dma_buf_phys_ranges_alloc - allocate a physical range list
 * @nr: number of ranges, at least 1
 * @gfp: allocation flags
 *
 * For exporters, in &dma_buf_ops.get_phys_ranges.
 *
 * Return: the list with @nr zeroed ranges, or NULL if @nr is 0 or memory
 * is short.
 */
struct dma_buf_phys_ranges *dma_buf_phys_ranges_alloc(unsigned int nr,
						      gfp_t gfp)
{
	struct dma_buf_phys_ranges *ranges;

	if (!nr)
		return NULL;
	ranges = kvzalloc(struct_size(ranges, ranges, nr), gfp);
	if (ranges)
		ranges->nr = nr;
	return ranges;
}
EXPORT_SYMBOL_NS_GPL(dma_buf_phys_ranges_alloc, DMA_BUF);

/**
 * dma_buf_phys_ranges_free - free a list from dma_buf_phys_ranges_alloc()
 * @ranges: the list; may be NULL
 */
void dma_buf_phys_ranges_free(struct dma_buf_phys_ranges *ranges)
{
	kvfree(ranges);
}
EXPORT_SYMBOL_NS_GPL(dma_buf_phys_ranges_free, DMA_BUF);

/*
 * The ops come together, and only dynamic exporters may have them: the core
 * maps a static exporter's buffer at attach, for the importer's device,
 * which an IOMMU-domain importer does not have.
 */
bool dma_buf_phys_ops_valid(const struct dma_buf_ops *ops)
{
	if (!ops->get_phys_ranges != !ops->put_phys_ranges ||
	    !ops->get_phys_ranges != !ops->iommu_reachable)
		return false;
	return !ops->get_phys_ranges || ops->pin;
}
EXPORT_SYMBOL_IF_KUNIT(dma_buf_phys_ops_valid);

/* Does the importer take IOMMU-domain mappings (and then nothing else)? */
bool dma_buf_iommu_importer(const struct dma_buf_attach_ops *importer_ops)
{
	return importer_ops &&
	       (importer_ops->map_types & BIT(DMA_BUF_MAP_IOMMU));
}

/* At attach, before the exporter's attach: may the importer have it? */
int dma_buf_iommu_attach(struct dma_buf_attachment *attach)
{
	const struct dma_buf_attach_ops *importer_ops = attach->importer_ops;
	struct dma_buf_iommu_attach *ia;

	if (WARN_ON(importer_ops->map_types != BIT(DMA_BUF_MAP_IOMMU) ||
		    !importer_ops->allow_peer2peer ||
		    !importer_ops->allow_revoke))
		return -EINVAL;
	if (!attach->dmabuf->ops->get_phys_ranges)
		return -EOPNOTSUPP;
	ia = kzalloc(sizeof(*ia), GFP_KERNEL_ACCOUNT);
	if (!ia)
		return -ENOMEM;
	INIT_LIST_HEAD(&ia->maps);
	attach->iommu = ia;
	attach->map_type = DMA_BUF_MAP_IOMMU;
	return 0;
}

/*
 * At detach, with the reservation lock held, and when the attach fails.
 * dma_buf_detach() has warned of records left; their mappings go anyway.
 */
void dma_buf_iommu_detach(struct dma_buf_attachment *attach)
{
	struct dma_buf_iommu_map *map, *next;

	if (!attach->iommu)
		return;
	dma_buf_iommu_revoke(attach);
	list_for_each_entry_safe(map, next, &attach->iommu->maps, node) {
		list_del_init(&map->node);
		mem_cgroup_put(map->memcg);
	}
	kfree(attach->iommu);
	attach->iommu = NULL;
}

/* A range of physical addresses that is System RAM, even in part? */
static bool is_ram(phys_addr_t addr, u64 len)
{
	while (len) {
		size_t chunk = min_t(u64, len, SIZE_MAX & PAGE_MASK);

		if (region_intersects(addr, chunk, IORESOURCE_SYSTEM_RAM,
				      IORES_DESC_NONE) != REGION_DISJOINT)
			return true;
		addr += chunk;
		len -= chunk;
	}
	return false;
}

/*
 * Page-aligned spans of device memory that do not wrap, the buffer's size
 * in whole pages.
 */
static int check_phys_ranges(struct dma_buf *dmabuf,
			     const struct dma_buf_phys_ranges *ranges)
{
	u64 total = 0;
	unsigned int i;

	if (!ranges->nr)
		return -EINVAL;
	for (i = 0; i < ranges->nr; i++) {
		const struct dma_buf_phys_range *r = &ranges->ranges[i];

		if (dma_buf_add_span(r->addr, r->len, (phys_addr_t)~0, &total))
			return -EINVAL;
		if (is_ram(r->addr, r->len)) {
			pr_warn_ratelimited("dma-buf: %s gave System RAM as device memory\n",
					    dmabuf->exp_name);
			return -EINVAL;
		}
	}
	return total == PAGE_ALIGN((u64)dmabuf->size) ? 0 : -EINVAL;
}

/* Take the exporter's ranges unless held: 0, -ENODEV while revoked, error. */
static int get_phys(struct dma_buf_attachment *attach)
{
	struct dma_buf_iommu_attach *ia = attach->iommu;
	struct dma_buf *dmabuf = attach->dmabuf;
	struct dma_buf_phys_ranges *phys;
	int ret;

	if (ia->phys)
		return 0;
	phys = dmabuf->ops->get_phys_ranges(attach);
	if (!phys)
		return -ENOMEM;
	if (IS_ERR(phys))
		return PTR_ERR(phys);
	ret = check_phys_ranges(dmabuf, phys);
	if (ret) {
		dmabuf->ops->put_phys_ranges(attach, phys);
		return ret;
	}
	ia->phys = phys;
	return 0;
}

/* Give the ranges back: nothing of them is mapped any more. */
static void put_phys(struct dma_buf_attachment *attach)
{
	struct dma_buf_iommu_attach *ia = attach->iommu;

	if (!ia->phys)
		return;
	attach->dmabuf->ops->put_phys_ranges(attach, ia->phys);
	ia->phys = NULL;
}

/* Unmap what map_one() mapped at @map->iova; the IOTLB is synced. */
static void unmap_iova(struct dma_buf_iommu_map *map, size_t len)
{
	WARN_ON(iommu_unmap(map->domain, map->iova, len) != len);
}

/*
 * Map the part of the buffer @map names, from the ranges, back to back:
 * all of it, or nothing.  Page tables are charged to @map's memory cgroup.
 */
static int map_one(const struct dma_buf_phys_ranges *phys,
		   struct dma_buf_iommu_map *map)
{
	int prot = (map->prot & (IOMMU_READ | IOMMU_WRITE)) | IOMMU_MMIO;
	struct mem_cgroup *old = set_active_memcg(map->memcg);
	u64 offset = map->offset;
	size_t done = 0;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < phys->nr && done < map->length; i++) {
		const struct dma_buf_phys_range *r = &phys->ranges[i];
		size_t len;

		if (offset >= r->len) {
			offset -= r->len;
			continue;
		}
		len = min_t(u64, r->len - offset, map->length - done);
		ret = iommu_map(map->domain, map->iova + done, r->addr + offset,
				len, prot, GFP_KERNEL_ACCOUNT);
		if (ret)
			break;
		done += len;
		offset = 0;
	}
	set_active_memcg(old);
	/* dma_buf_iommu_map() checked that the part lies in the ranges */
	if (!ret && WARN_ON(done != map->length))
		ret = -EINVAL;
	if (ret && done)
		unmap_iova(map, done);
	/* A record's -ENODEV means revoked; an IOMMU driver's is a failure */
	return ret == -ENODEV ? -EIO : ret;
}

static bool is_iommu_attach(struct dma_buf_attachment *attach)
{
	return !WARN_ON_ONCE(!attach || !attach->dmabuf ||
			     attach->map_type != DMA_BUF_MAP_IOMMU);
}

/**
 * dma_buf_iommu_reachable - can a device reach the memory through a domain
 * @attach: an attachment of type %DMA_BUF_MAP_IOMMU
 * @dev: a device that uses, or is about to use, the importer's IOMMU
 *	domains
 *
 * The importer asks before the memory and @dev meet in a domain, either
 * way round (see "IOMMU-domain mappings"); the exporter answers from its
 * &dma_buf_ops.iommu_reachable.  Called under the importer's own locks,
 * never the reservation lock; may sleep.
 *
 * Return: true if DMA from @dev, translated by the importer's domains,
 * reaches the dma-buf's memory; false if it does not, or for an
 * attachment of another type.
 */
bool dma_buf_iommu_reachable(struct dma_buf_attachment *attach,
			     struct device *dev)
{
	might_sleep();
	if (!is_iommu_attach(attach))
		return false;
	return attach->dmabuf->ops->iommu_reachable(attach, dev);
}
EXPORT_SYMBOL_GPL_FOR_MODULES(dma_buf_iommu_reachable, "iommufd");

/**
 * dma_buf_iommu_map - map part of a dma-buf into an IOMMU domain
 * @attach: an attachment of type %DMA_BUF_MAP_IOMMU
 * @map: what to map where, filled in by the importer; see
 *	&struct dma_buf_iommu_map
 *
 * The caller holds the reservation lock.  The core maps the memory and
 * keeps a record of the mapping until dma_buf_iommu_unmap(): the mapping
 * goes when the exporter revokes access and comes back when it restores
 * it (see "IOMMU-domain mappings").  While access is revoked the record is
 * made and nothing is mapped yet.
 *
 * Return: 0 when the record is made (dma_buf_iommu_map_state() says
 * whether the memory is mapped now), or an error and no record: -EINVAL
 * for an attachment of another type, an unaligned or empty part, one
 * past the buffer's pages or an IOVA range that wraps, or an exporter
 * whose ranges break the rules of &struct dma_buf_phys_range (System RAM
 * among them); the exporter's errors; the errors of iommu_map() (its
 * -ENODEV as -EIO); -ENOMEM.
 */
int dma_buf_iommu_map(struct dma_buf_attachment *attach,
		      struct dma_buf_iommu_map *map)
{
	struct dma_buf_iommu_attach *ia;
	unsigned long last;
	u64 size;
	int ret;

	might_sleep();
	if (!is_iommu_attach(attach))
		return -EINVAL;
	dma_resv_assert_held(attach->dmabuf->resv);
	ia = attach->iommu;

	size = PAGE_ALIGN((u64)attach->dmabuf->size);
	if (!map->length || !PAGE_ALIGNED(map->offset) ||
	    !PAGE_ALIGNED(map->length) || !PAGE_ALIGNED(map->iova) ||
	    map->offset > size || map->length > size - map->offset ||
	    check_add_overflow(map->iova, map->length - 1, &last))
		return -EINVAL;

	ret = get_phys(attach);
	if (ret && ret != -ENODEV)
		return ret;
	map->memcg = get_mem_cgroup_from_current();
	map->state = ret ?: map_one(ia->phys, map);
	if (map->state && map->state != -ENODEV) {
		ret = map->state;
		mem_cgroup_put(map->memcg);
		if (list_empty(&ia->maps))
			put_phys(attach);
		return ret;
	}
	list_add_tail(&map->node, &ia->maps);
	attach->map_count++;
	return 0;
}
EXPORT_SYMBOL_GPL_FOR_MODULES(dma_buf_iommu_map, "iommufd");

/**
 * dma_buf_iommu_unmap - remove a mapping made by dma_buf_iommu_map()
 * @attach: the attachment
 * @map: the mapping
 *
 * The caller holds the reservation lock.  Once this returns, nothing of
 * @map is mapped in its domain, the IOTLB is synced, and @map is the
 * importer's again.
 */
void dma_buf_iommu_unmap(struct dma_buf_attachment *attach,
			 struct dma_buf_iommu_map *map)
{
	struct dma_buf_iommu_attach *ia;

	might_sleep();
	if (!is_iommu_attach(attach))
		return;
	dma_resv_assert_held(attach->dmabuf->resv);
	ia = attach->iommu;
	if (WARN_ON_ONCE(!attach->map_count))
		return;

	if (!map->state)
		unmap_iova(map, map->length);
	else if (map->state != -ENODEV)
		ia->nr_failed--;
	list_del(&map->node);
	mem_cgroup_put(map->memcg);
	attach->map_count--;
	if (list_empty(&ia->maps))
		put_phys(attach);
}
EXPORT_SYMBOL_GPL_FOR_MODULES(dma_buf_iommu_unmap, "iommufd");

/**
 * dma_buf_iommu_alignment - how an IOVA for part of a dma-buf should align
 * @attach: an attachment of type %DMA_BUF_MAP_IOMMU
 * @offset: a page-aligned byte offset in the dma-buf
 *
 * An IOVA aligned like the memory's physical address gets the largest
 * IOMMU pages.  The caller holds the reservation lock.
 *
 * Return: the largest power of two that divides the physical address of
 * @offset, or 0, no preference, if the exporter gives no ranges now
 * (revoked).
 */
unsigned long dma_buf_iommu_alignment(struct dma_buf_attachment *attach,
				      u64 offset)
{
	struct dma_buf_iommu_attach *ia;
	unsigned long align = 0;
	unsigned int i;

	if (!is_iommu_attach(attach))
		return 0;
	dma_resv_assert_held(attach->dmabuf->resv);
	ia = attach->iommu;
	if (get_phys(attach))
		return 0;
	for (i = 0; i < ia->phys->nr; i++) {
		const struct dma_buf_phys_range *r = &ia->phys->ranges[i];

		if (offset < r->len) {
			u64 addr = r->addr + offset;

			align = 1UL << min_t(unsigned int, __ffs64(addr | BIT_ULL(63)),
					     BITS_PER_LONG - 1);
			break;
		}
		offset -= r->len;
	}
	if (list_empty(&ia->maps))
		put_phys(attach);
	return align;
}
EXPORT_SYMBOL_GPL_FOR_MODULES(dma_buf_iommu_alignment, "iommufd");

/*
 * From dma_buf_move_notify(): unmap every record, give the ranges back.
 * The IOTLB of a domain is synced once for a run of records in it, and
 * every domain's before this returns.
 */
void dma_buf_iommu_revoke(struct dma_buf_attachment *attach)
{
	struct dma_buf_iommu_attach *ia = attach->iommu;
	struct iommu_domain *domain = NULL;
	struct iommu_iotlb_gather gather;
	struct dma_buf_iommu_map *map;

	iommu_iotlb_gather_init(&gather);
	list_for_each_entry(map, &ia->maps, node) {
		if (!map->state) {
			if (domain && domain != map->domain) {
				iommu_iotlb_sync(domain, &gather);
				iommu_iotlb_gather_init(&gather);
			}
			domain = map->domain;
			WARN_ON(iommu_unmap_fast(domain, map->iova, map->length,
						 &gather) != map->length);
		}
		map->state = -ENODEV;
		cond_resched();
	}
	if (domain)
		iommu_iotlb_sync(domain, &gather);
	ia->nr_failed = 0;
	put_phys(attach);
}

static void restore_attach(struct dma_buf_attachment *attach)
{
	struct dma_buf_iommu_attach *ia = attach->iommu;
	struct dma_buf_iommu_map *map;
	int ret;

	if (list_empty(&ia->maps))
		return;
	ret = get_phys(attach);
	if (ret == -ENODEV)
		return;
	list_for_each_entry(map, &ia->maps, node) {
		bool failed = map->state && map->state != -ENODEV;

		if (!map->state)
			continue;
		map->state = ret ?: map_one(ia->phys, map);
		if (map->state && !failed)
			ia->nr_failed++;
		else if (!map->state && failed)
			ia->nr_failed--;
		cond_resched();
	}
	if (ia->nr_failed)
		pr_warn_ratelimited("dma-buf: %s: %u IOMMU mappings of %s not restored\n",
				    dev_name(attach->dev), ia->nr_failed,
				    attach->dmabuf->exp_name);
}

/**
 * dma_buf_restore_mappings - map a dma-buf into IOMMU domains again
 * @dmabuf: the buffer, whose exporter has given access back
 *
 * For exporters with &dma_buf_ops.get_phys_ranges, after they restore
 * access that they revoked with dma_buf_move_notify(), with the
 * reservation lock held: every IOMMU-domain mapping recorded for the
 * buffer is mapped again, at the same IOVA.  Importers of other types are
 * not told; they map again when they need to.  Restoring does not fail:
 * a mapping that cannot be made is marked and retried at the next call
 * (see "IOMMU-domain mappings").
 */
void dma_buf_restore_mappings(struct dma_buf *dmabuf)
{
	struct dma_buf_attachment *attach;

	dma_resv_assert_held(dmabuf->resv);
	list_for_each_entry(attach, &dmabuf->attachments, node)
		if (attach->map_type == DMA_BUF_MAP_IOMMU)
			restore_attach(attach);
}
EXPORT_SYMBOL_NS_GPL(dma_buf_restore_mappings, DMA_BUF);

/* The fdinfo lines of a buffer with IOMMU-domain importers. */
void dma_buf_iommu_show_fdinfo(struct seq_file *m, struct dma_buf *dmabuf)
{
	struct dma_buf_attachment *attach;
	unsigned int mapped = 0, failed = 0;
	bool any = false;

	/* Other buffers' fdinfo takes no lock but 6.12's */
	if (!dmabuf->ops->get_phys_ranges ||
	    dma_resv_lock_interruptible(dmabuf->resv, NULL))
		return;
	list_for_each_entry(attach, &dmabuf->attachments, node) {
		if (attach->map_type != DMA_BUF_MAP_IOMMU)
			continue;
		any = true;
		mapped += attach->map_count;
		failed += attach->iommu->nr_failed;
	}
	dma_resv_unlock(dmabuf->resv);
	if (any)
		seq_printf(m, "iommu_mappings:\t%u\niommu_unrestored:\t%u\n",
			   mapped, failed);
}
EXPORT_SYMBOL_IF_KUNIT(dma_buf_iommu_show_fdinfo);
