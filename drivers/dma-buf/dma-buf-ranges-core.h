/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Glue between the dma-buf core (dma-buf.c) and the range list code
 * (dma-buf-ranges.c).  Not for drivers.
 */
#ifndef __DMA_BUF_RANGES_CORE_H
#define __DMA_BUF_RANGES_CORE_H

#include <linux/dma-buf.h>

/* Implemented in dma-buf.c: exporter sg_table calls with the debug checks. */
struct sg_table *__map_dma_buf(struct dma_buf_attachment *attach,
			       enum dma_data_direction direction);
void __unmap_dma_buf(struct dma_buf_attachment *attach,
		     struct sg_table *sg_table,
		     enum dma_data_direction direction);

bool dma_buf_ops_valid_map(const struct dma_buf_ops *ops);
struct sg_table *dma_buf_exporter_map_sgt(struct dma_buf_attachment *attach,
					  enum dma_data_direction dir);
void dma_buf_exporter_unmap_sgt(struct dma_buf_attachment *attach,
				struct sg_table *sgt,
				enum dma_data_direction dir);
void dma_buf_ranges_detach(struct dma_buf_attachment *attach);

#endif /* __DMA_BUF_RANGES_CORE_H */
