/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DMA range lists for dma-buf importers.
 *
 * An importer needs only the DMA side of a mapping: (address, length)
 * pairs in its own device's address space.  A range list carries exactly
 * that, with 64-bit lengths, and no struct pages or CPU addresses an
 * importer could be tempted to touch.
 */
#ifndef __LINUX_DMA_BUF_RANGES_H
#define __LINUX_DMA_BUF_RANGES_H

#include <linux/dma-direction.h>
#include <linux/types.h>

struct dma_buf_attachment;
struct sg_table;

/**
 * struct dma_buf_range - one contiguous span of a mapped dma-buf
 * @addr: DMA address of the span, as seen by the importing device
 * @len: length of the span in bytes; never 0
 */
struct dma_buf_range {
	dma_addr_t addr;
	u64 len;
};

/**
 * struct dma_buf_ranges - a dma-buf mapped for one attachment
 * @nr: number of entries in @ranges, at least 1
 * @exporter_priv: the exporter's per-mapping data, for its unmap
 * @sgt: the exporter's sg_table when the core built this list from one;
 *	 NULL when the exporter implements the range ops itself
 * @ranges: the spans, in dma-buf offset order
 *
 * Importers read @nr and @ranges only.  The spans cover the whole dma-buf
 * in order.  A range exporter's spans are passed on as it returned them;
 * spans built from an sg_table exporter have DMA-contiguous entries merged.
 */
struct dma_buf_ranges {
	unsigned int nr;
	void *exporter_priv;
	struct sg_table *sgt;
	struct dma_buf_range ranges[] __counted_by(nr);
};

struct dma_buf_ranges *dma_buf_ranges_alloc(unsigned int nr, gfp_t gfp);
void dma_buf_ranges_free(struct dma_buf_ranges *ranges);

struct dma_buf_ranges *dma_buf_map_ranges(struct dma_buf_attachment *attach,
					  enum dma_data_direction dir);
void dma_buf_unmap_ranges(struct dma_buf_attachment *attach,
			  struct dma_buf_ranges *ranges,
			  enum dma_data_direction dir);
struct dma_buf_ranges *
dma_buf_map_ranges_unlocked(struct dma_buf_attachment *attach,
			    enum dma_data_direction dir);
void dma_buf_unmap_ranges_unlocked(struct dma_buf_attachment *attach,
				   struct dma_buf_ranges *ranges,
				   enum dma_data_direction dir);

#endif /* __LINUX_DMA_BUF_RANGES_H */
