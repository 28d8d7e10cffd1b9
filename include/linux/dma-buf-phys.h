/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Physical range lists for dma-buf importers that own IOMMU page tables.
 *
 * A DMA range list gives addresses for one importing device.  An importer
 * that programs IOMMU page tables itself, for whichever devices attach to
 * them later (iommufd), needs the CPU physical address of the memory
 * instead, and needs to know that it is device memory (MMIO).
 */
#ifndef __LINUX_DMA_BUF_PHYS_H
#define __LINUX_DMA_BUF_PHYS_H

#include <linux/types.h>

struct dma_buf_attachment;

/**
 * struct dma_buf_phys_range - one contiguous span of a dma-buf's memory
 * @addr: CPU physical address of the span; page aligned
 * @len: length in bytes; a multiple of PAGE_SIZE, never 0
 */
struct dma_buf_phys_range {
	phys_addr_t addr;
	u64 len;
};

/**
 * struct dma_buf_phys_ranges - a dma-buf's memory by CPU physical address
 * @nr: number of entries in @ranges, at least 1
 * @exporter_priv: the exporter's own data for this mapping, for its
 *	&dma_buf_ops.unmap_phys_ranges; neither the core nor importers use it
 * @ranges: the spans, in dma-buf offset order, covering the whole buffer
 *
 * Only device memory is described this way: MMIO without struct pages, to
 * be mapped uncached (IOMMU_MMIO, never IOMMU_CACHE).  Allocated only by
 * dma_buf_phys_ranges_alloc(); importers get the list read-only.
 */
struct dma_buf_phys_ranges {
	unsigned int nr;
	void *exporter_priv;
	struct dma_buf_phys_range ranges[] __counted_by(nr);
};

struct dma_buf_phys_ranges *dma_buf_phys_ranges_alloc(unsigned int nr,
						      gfp_t gfp);
void dma_buf_phys_ranges_free(struct dma_buf_phys_ranges *ranges);

const struct dma_buf_phys_ranges *
dma_buf_map_phys_ranges(struct dma_buf_attachment *attach);
void dma_buf_unmap_phys_ranges(struct dma_buf_attachment *attach,
			       const struct dma_buf_phys_ranges *ranges);

#endif /* __LINUX_DMA_BUF_PHYS_H */
