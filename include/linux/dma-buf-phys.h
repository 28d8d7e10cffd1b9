/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Physical range lists: how an exporter of device memory gives the dma-buf
 * core the memory's CPU physical address, for the core to map it into the
 * IOMMU domains of importers that own page tables (see
 * <linux/dma-buf-iommu.h>).  For exporters only: importers never see them.
 */
#ifndef __LINUX_DMA_BUF_PHYS_H
#define __LINUX_DMA_BUF_PHYS_H

#include <linux/types.h>

struct dma_buf;

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
 * @exporter_priv: the exporter's own data for this list, for its
 *	&dma_buf_ops.put_phys_ranges; the core does not use it
 * @ranges: the spans, in dma-buf offset order, covering the whole buffer
 *
 * Only device memory is described this way: MMIO without struct pages,
 * which the core maps uncached (IOMMU_MMIO, never IOMMU_CACHE) and refuses
 * if any of it is System RAM.  Allocated only by
 * dma_buf_phys_ranges_alloc().
 */
struct dma_buf_phys_ranges {
	unsigned int nr;
	void *exporter_priv;
	struct dma_buf_phys_range ranges[] __counted_by(nr);
};

struct dma_buf_phys_ranges *dma_buf_phys_ranges_alloc(unsigned int nr,
						      gfp_t gfp);
void dma_buf_phys_ranges_free(struct dma_buf_phys_ranges *ranges);
void dma_buf_restore_mappings(struct dma_buf *dmabuf);

#endif /* __LINUX_DMA_BUF_PHYS_H */
