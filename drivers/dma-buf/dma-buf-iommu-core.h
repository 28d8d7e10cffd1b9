/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Glue between the dma-buf core (dma-buf.c) and its IOMMU-domain mappings
 * (dma-buf-iommu.c).  Not for drivers.
 */
#ifndef __DMA_BUF_IOMMU_CORE_H
#define __DMA_BUF_IOMMU_CORE_H

#include <linux/dma-buf.h>

struct seq_file;

bool dma_buf_phys_ops_valid(const struct dma_buf_ops *ops);
bool dma_buf_iommu_importer(const struct dma_buf_attach_ops *importer_ops);
int dma_buf_iommu_attach(struct dma_buf_attachment *attach);
void dma_buf_iommu_detach(struct dma_buf_attachment *attach);
void dma_buf_iommu_revoke(struct dma_buf_attachment *attach);
void dma_buf_iommu_show_fdinfo(struct seq_file *m, struct dma_buf *dmabuf);

#endif /* __DMA_BUF_IOMMU_CORE_H */
