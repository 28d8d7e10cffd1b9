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

/**
 * struct dma_buf_range - one contiguous span of a mapped dma-buf
 * @addr: DMA address of the span, as seen by the importing device
 * @len: length of the span in bytes; never 0
 *
 * @addr and @len are multiples of PAGE_SIZE, as dma_buf_map_attachment()
 * promises for its entries; the core refuses lists that are not.  The
 * ranges of a buffer add up to its size rounded up to a page.
 */
struct dma_buf_range {
	dma_addr_t addr;
	u64 len;
};

/**
 * struct dma_buf_ranges - a dma-buf mapped for one attachment
 * @nr: number of entries in @ranges, at least 1
 * @exporter_priv: the exporter's own data for this mapping, for its
 *	&dma_buf_ops.unmap_dma_ranges; neither the core nor importers use it
 * @ranges: the spans, in dma-buf offset order
 *
 * The spans cover the whole dma-buf in order, in whole pages (the bytes
 * past &dma_buf.size in the last one are not the buffer's), and do not
 * wrap the DMA address space.  A range exporter's spans are passed on as it returned
 * them; spans built from an sg_table exporter have DMA-contiguous entries
 * merged.  Lists are allocated only by dma_buf_ranges_alloc(), which keeps
 * the core's own bookkeeping out of sight; importers get them read-only.
 */
struct dma_buf_ranges {
	unsigned int nr;
	void *exporter_priv;
	struct dma_buf_range ranges[] __counted_by(nr);
};

struct dma_buf_ranges *dma_buf_ranges_alloc(unsigned int nr, gfp_t gfp);
void dma_buf_ranges_free(struct dma_buf_ranges *ranges);

const struct dma_buf_ranges *
dma_buf_map_ranges(struct dma_buf_attachment *attach,
		   enum dma_data_direction dir);
void dma_buf_unmap_ranges(struct dma_buf_attachment *attach,
			  const struct dma_buf_ranges *ranges,
			  enum dma_data_direction dir);
const struct dma_buf_ranges *
dma_buf_map_ranges_unlocked(struct dma_buf_attachment *attach,
			    enum dma_data_direction dir);
void dma_buf_unmap_ranges_unlocked(struct dma_buf_attachment *attach,
				   const struct dma_buf_ranges *ranges,
				   enum dma_data_direction dir);

#endif /* __LINUX_DMA_BUF_RANGES_H */
