/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interface of the benchmark-only struct-page exporter
 * (p2p_page_exporter.c beside this file): /dev/p2p_page_exporter.
 */
#ifndef P2P_PAGE_EXPORTER_H
#define P2P_PAGE_EXPORTER_H

#include <linux/ioctl.h>
#include <linux/types.h>

/*
 * PPE_EXPORT: a dma-buf of [0, @size) of the bound device's BAR 2.  The
 * part of it without struct pages yet gets them first, which @create_ns
 * times (0 when no pages were needed).  With PPE_STATIC_RANGES it is
 * instead a static exporter with range ops only and needs no pages: what
 * a dynamic importer's attachment then caches is the benchmark's "attach"
 * row.
 */
struct ppe_export {
	__u64 size;		/* multiple of 2 MiB, within the BAR */
	__s32 fd;		/* out: the dma-buf */
	__u32 flags;		/* PPE_STATIC_RANGES or 0 */
	__u64 create_ns;	/* out: time spent creating pages */
};

#define PPE_STATIC_RANGES	(1 << 0)

#define PPE_EXPORT	_IOWR('p', 1, struct ppe_export)

#endif /* P2P_PAGE_EXPORTER_H */
