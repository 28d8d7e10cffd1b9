/* SPDX-License-Identifier: GPL-2.0 */
/*
 * IOMMU-domain mappings of dma-bufs, made by the dma-buf core for importers
 * that own IOMMU page tables (iommufd).  The importer names a domain, an
 * IOVA and a part of the buffer; the core maps the exporter's memory there
 * and keeps it mapped while the exporter allows, so the memory's physical
 * address never leaves the core.
 */
#ifndef __LINUX_DMA_BUF_IOMMU_H
#define __LINUX_DMA_BUF_IOMMU_H

#include <linux/list.h>
#include <linux/types.h>

struct dma_buf_attachment;
struct device;
struct iommu_domain;
struct mem_cgroup;

/**
 * struct dma_buf_iommu_map - a part of a dma-buf mapped into an IOMMU domain
 * @domain: the domain; a paging domain
 * @iova: where in @domain; page aligned
 * @offset: where in the dma-buf; page aligned
 * @length: bytes; page aligned, not 0, within the dma-buf's pages
 * @prot: IOMMU_READ and IOMMU_WRITE; the core maps device memory with
 *	IOMMU_MMIO and never IOMMU_CACHE
 *
 * The importer embeds this, fills in the fields above and hands it to
 * dma_buf_iommu_map(); they must not change until dma_buf_iommu_unmap().
 * The rest is the core's, under the dma-buf's reservation lock.
 */
struct dma_buf_iommu_map {
	struct iommu_domain *domain;
	unsigned long iova;
	u64 offset;
	size_t length;
	int prot;
	/* private: */
	struct list_head node;
	struct mem_cgroup *memcg;
	int state;
};

bool dma_buf_iommu_reachable(struct dma_buf_attachment *attach,
			     struct device *dev);
int dma_buf_iommu_map(struct dma_buf_attachment *attach,
		      struct dma_buf_iommu_map *map);
void dma_buf_iommu_unmap(struct dma_buf_attachment *attach,
			 struct dma_buf_iommu_map *map);
unsigned long dma_buf_iommu_alignment(struct dma_buf_attachment *attach,
				      u64 offset);

/**
 * dma_buf_iommu_map_state - is a mapping in place?
 * @map: a mapping made by dma_buf_iommu_map()
 *
 * The caller holds the dma-buf's reservation lock.
 *
 * Return: 0 while the memory is mapped, -ENODEV while the exporter has
 * revoked access, or the error (never -ENODEV) of the last restore, which
 * could not map it and which the exporter's next restore retries.
 */
static inline int dma_buf_iommu_map_state(const struct dma_buf_iommu_map *map)
{
	return map->state;
}

#endif /* __LINUX_DMA_BUF_IOMMU_H */
