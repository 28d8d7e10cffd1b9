/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Glue between the dma-buf core (dma-buf.c) and the range list code
 * (dma-buf-ranges.c).  Not for drivers.
 */
#ifndef __DMA_BUF_RANGES_CORE_H
#define __DMA_BUF_RANGES_CORE_H

#include <linux/dma-buf.h>

/* dma-buf.c: the pin rule both kinds of mapping share. */
bool dma_buf_pin_on_map(struct dma_buf_attachment *attach);

/* dma-buf-ranges.c: one range of a DMA or physical range list. */
int dma_buf_add_span(u64 addr, u64 len, u64 top, u64 *total);

/* dma-buf-ranges.c: the exporter's ops, whichever kind it has. */
bool dma_buf_ops_valid_map(const struct dma_buf_ops *ops);
struct sg_table *dma_buf_exporter_map_sgt(struct dma_buf_attachment *attach,
					  enum dma_data_direction dir);
void dma_buf_exporter_unmap_sgt(struct dma_buf_attachment *attach,
				struct sg_table *sgt,
				enum dma_data_direction dir);

/* dma-buf-ranges.c: an attachment's kind of mapping, and its cache. */
int dma_buf_choose_map_type(struct dma_buf_attachment *attach);
int dma_buf_map_type_allowed(struct dma_buf_attachment *attach);
int dma_buf_ranges_cache(struct dma_buf_attachment *attach);
void dma_buf_ranges_uncache(struct dma_buf_attachment *attach);

#endif /* __DMA_BUF_RANGES_CORE_H */
