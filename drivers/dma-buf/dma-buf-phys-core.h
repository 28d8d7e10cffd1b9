/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Glue between the dma-buf core (dma-buf.c) and the physical range list
 * code (dma-buf-phys.c).  Not for drivers.
 */
#ifndef __DMA_BUF_PHYS_CORE_H
#define __DMA_BUF_PHYS_CORE_H

#include <linux/dma-buf.h>

bool dma_buf_phys_ops_valid(const struct dma_buf_ops *ops);
bool dma_buf_phys_importer(const struct dma_buf_attach_ops *importer_ops);
int dma_buf_phys_attach_check(struct dma_buf_attachment *attach);

#endif /* __DMA_BUF_PHYS_CORE_H */
