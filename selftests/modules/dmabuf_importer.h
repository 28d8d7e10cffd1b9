/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interface of the test-only dma-buf importer (dmabuf_importer.c beside
 * this file): a driver for QEMU's edu device that imports a dma-buf
 * for edu, through the range API or the sg_table API or as an RDMA umem,
 * and moves bytes between it and RAM with edu's DMA engine.  /dev/dmabuf_importer; one
 * attachment per open file.
 */
#ifndef DMABUF_IMPORTER_H
#define DMABUF_IMPORTER_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Attachment modes */
#define IMP_DYNAMIC	(1 << 0)	/* importer ops with move_notify */
#define IMP_P2P		(1 << 1)	/* allow_peer2peer */
#define IMP_REVOCABLE	(1 << 2)	/* allow_revoke */
#define IMP_SGT		(1 << 3)	/* takes sg_tables (IMP_API_SGT), not ranges */

struct imp_attach {
	__s32 fd;		/* the dma-buf */
	__u32 flags;		/* IMP_* */
};

/* Which importer API maps */
#define IMP_API_RANGES	0
#define IMP_API_SGT	1

struct imp_range {
	__u64 addr;
	__u64 len;
};

struct imp_map {
	__u32 api;		/* IMP_API_* */
	__u32 pin;		/* dma_buf_pin() before mapping */
	__u32 nr;		/* in: room in @ranges; out: entries mapped */
	__u32 pad;
	__u64 ranges;		/* user array of struct imp_range */
};

struct imp_status {
	__u32 moves;		/* move_notify calls so far */
	__u32 mapped;		/* a mapping is held */
	__u32 dma_count;	/* edu DMA transfers issued */
	__u32 pad;
};

#define IMP_DMA_MAX	2048	/* QEMU 7.2's edu aborts at 4096 */

/* IMP_DMA: offsets in the dma-buf; IMP_UMEM_DMA: offsets in the MR. */
struct imp_dma {
	__u64 offset;		/* byte offset in the dma-buf or MR */
	__u32 len;		/* 1 to IMP_DMA_MAX, within one range or block */
	__u32 to_dmabuf;	/* 1: @data -> imported memory; 0: the reverse */
	__u64 data;		/* user buffer of @len bytes */
};

/* RDMA umems of a dma-buf, with edu as the ib_device's DMA device */
#define IMP_UMEM_DYNAMIC		0	/* ib_umem_dmabuf_get() */
#define IMP_UMEM_PINNED			1	/* ib_umem_dmabuf_get_pinned() */
#define IMP_UMEM_PINNED_REVOCABLE	2	/* ..._get_pinned_revocable_and_lock() */

struct imp_umem {
	__s32 fd;		/* the dma-buf (IMP_UMEM_GET only) */
	__u32 mode;		/* IMP_UMEM_* (IMP_UMEM_GET only) */
	__u64 offset;		/* of the MR in the dma-buf (IMP_UMEM_GET only) */
	__u64 length;		/* of the MR (IMP_UMEM_GET only) */
	__u64 iova;		/* of the MR */
	__u64 pgsz_bitmap;	/* the "driver's" page sizes */
	__u64 pgsz;		/* out: ib_umem_find_best_pgsz() */
	__u64 page_blocks;	/* out: ib_umem_num_dma_blocks() at PAGE_SIZE */
	__u32 nr_blocks;	/* in: room in @blocks; out: blocks at @pgsz */
	__u32 __reserved;
	__u64 blocks;		/* user array of __u64 block DMA addresses */
};

struct imp_umem_status {
	__u32 mapped;		/* the umem holds DMA ranges */
	__u32 revoked;		/* the umem was revoked */
	__u32 invalidations;	/* move_notify calls (dynamic) */
	__u32 revoke_calls;	/* revoke callback calls (pinned revocable) */
	__u32 revoked_mapped;	/* of those, calls made before the unmap */
};

/*
 * IMP_BENCH: time @iters repetitions of one way to give edu the dma-buf.
 * RANGES and SGT map and unmap the file's attachment (IMP_ATTACH first);
 * UMEM imports the whole of dma-buf @fd as a dynamic RDMA umem, maps it,
 * picks the block size from @pgsz_bitmap and walks every block, as a
 * driver registering an MR does, then releases it; UMEM_SGT does the
 * same through an sg_table, as 6.12's umem did (dma_buf_map_attachment(),
 * an ib_umem over the table), so that the two differ only in the list.
 * ATTACH attaches edu to dma-buf @fd as a dynamic P2P importer and
 * detaches it: @entries and @bytes are what the attachment cached
 * meanwhile.
 */
#define IMP_BENCH_RANGES	0	/* dma_buf_map_ranges() + unmap */
#define IMP_BENCH_SGT		1	/* dma_buf_map_attachment() + unmap */
#define IMP_BENCH_UMEM		2	/* umem get + map + block walk + release */
#define IMP_BENCH_ATTACH	3	/* dynamic attach + detach of @fd */
#define IMP_BENCH_UMEM_SGT	4	/* UMEM through an sg_table */
#define IMP_BENCH_MAX_ITERS	100000

struct imp_bench {
	__u32 op;		/* IMP_BENCH_* */
	__u32 iters;		/* 1 to IMP_BENCH_MAX_ITERS */
	__u64 max_seg;		/* SGT: edu's max segment size meanwhile; 0: as is */
	__u64 pgsz_bitmap;	/* UMEM*: the driver's page sizes */
	__s32 fd;		/* UMEM*, ATTACH: the dma-buf */
	__u32 pad;
	__u64 ns;		/* user array of @iters __u64: ns of each repetition */
	__u64 entries;		/* out: ranges, sg_table entries or blocks */
	__u64 bytes;		/* out: bytes the importer's mapping holds */
};

/*
 * IMP_SLOW: how this importer answers move_notify from now on, like a
 * driver whose hardware is still busy.  IMP_SLOW_UNMAP stops DMA at once
 * but gives the mapping back @delay_ms later, or on IMP_UNMAP when
 * @delay_ms is 0 (after IMP_SLOW_HOLD_MS at the latest, so that a test
 * that dies cannot hang the guest); IMP_SLOW_FENCE gives it back at once
 * and leaves a fence on the reservation that signals @delay_ms later.
 */
#define IMP_SLOW_HOLD_MS	30000
#define IMP_SLOW_NONE	0	/* give the mapping back at once (default) */
#define IMP_SLOW_UNMAP	1
#define IMP_SLOW_FENCE	2

struct imp_slow {
	__u32 mode;		/* IMP_SLOW_* */
	__u32 delay_ms;		/* up to 60000 */
};

#define IMP_ATTACH	_IOW('i', 1, struct imp_attach)
#define IMP_DETACH	_IO('i', 2)
#define IMP_MAP		_IOWR('i', 3, struct imp_map)
#define IMP_UNMAP	_IO('i', 4)
#define IMP_STATUS	_IOR('i', 5, struct imp_status)
#define IMP_DMA		_IOW('i', 6, struct imp_dma)
#define IMP_UMEM_GET	_IOWR('i', 7, struct imp_umem)	/* get, map, walk */
#define IMP_UMEM_MAP	_IOWR('i', 8, struct imp_umem)	/* map again, walk */
#define IMP_UMEM_STATUS	_IOR('i', 9, struct imp_umem_status)
#define IMP_UMEM_DMA	_IOW('i', 10, struct imp_dma)
#define IMP_UMEM_PUT	_IO('i', 11)
#define IMP_BENCH	_IOWR('i', 12, struct imp_bench)
#define IMP_SLOW	_IOW('i', 13, struct imp_slow)

#endif /* DMABUF_IMPORTER_H */
