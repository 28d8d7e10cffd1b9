// SPDX-License-Identifier: GPL-2.0
/*
 * A test-only dma-buf importer with a real DMA engine: it drives QEMU's edu
 * device (1234:11e8), imports dma-bufs for it through the dma-buf range API
 * or the legacy sg_table API, and copies bytes between RAM and the imported
 * memory with edu's DMA engine; for the benchmark it times those imports.
 * Userspace drives it through /dev/dmabuf_importer (see dmabuf_importer.h);
 * like the iommufd selftest mock, it exists so that kselftests can reach
 * kernel-only interfaces.
 *
 * Every mapping and every DMA happens under the dma-buf's reservation lock,
 * and after move_notify no DMA is issued until the importer maps again, so
 * none reaches memory the exporter has revoked.  move_notify gives the
 * mapping back at once, or, in IMP_SLOW mode, late or with a fence still
 * pending, as a driver whose hardware is busy does.
 */
#include <linux/delay.h>
#include <linux/dma-buf.h>
#include <linux/dma-buf-ranges.h>
#include <linux/dma-fence.h>
#include <linux/dma-mapping.h>
#include <linux/dma-resv.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <rdma/ib_umem.h>
#include <rdma/ib_verbs.h>
#include <rdma/iter.h>

#include "dmabuf_importer.h"

MODULE_IMPORT_NS(DMA_BUF);

#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_COUNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_CMD_START	BIT(0)
#define EDU_CMD_TO_RAM	BIT(1)	/* edu buffer -> address; else the reverse */
#define EDU_BUFFER	0x40000	/* edu's internal buffer, device address */

struct edu {
	struct pci_dev *pdev;
	void __iomem *regs;
	struct mutex lock;		/* one DMA at a time */
	void *bounce;			/* RAM side of every transfer */
	dma_addr_t bounce_dma;
	struct ib_device *ibdev;	/* for umems; never registered */
};

static struct edu *edu;

/* One importer: an open file of /dev/dmabuf_importer. */
struct importer {
	struct dma_buf *dmabuf;
	struct dma_buf_attachment *attach;
	/* The rest under the dma-buf's reservation lock. */
	const struct dma_buf_ranges *ranges;	/* IMP_API_RANGES mapping */
	struct sg_table *sgt;		/* IMP_API_SGT mapping */
	bool pinned;
	bool invalidated;		/* move_notify seen, unmap pending */
	u32 moves;
	u32 dma_count;
	u32 slow_mode, slow_ms;		/* IMP_SLOW */
	struct delayed_work slow_unmap;	/* IMP_SLOW_UNMAP's late unmap */
	struct dma_fence *fence;	/* IMP_SLOW_FENCE's busy hardware */
	struct delayed_work fence_signal;
	spinlock_t fence_lock;		/* of @fence */
	u64 fence_context;
	/* An RDMA umem of a dma-buf */
	struct ib_umem_dmabuf *umem;
	u64 iova, pgsz;
	u32 invalidations;		/* under the umem's dma-buf lock */
	u32 revoke_calls;
	u32 revoked_mapped;
};

static void importer_unmap(struct importer *imp)
{
	dma_resv_assert_held(imp->dmabuf->resv);
	if (imp->ranges)
		dma_buf_unmap_ranges(imp->attach, imp->ranges, DMA_BIDIRECTIONAL);
	if (imp->sgt)
		dma_buf_unmap_attachment(imp->attach, imp->sgt, DMA_BIDIRECTIONAL);
	imp->ranges = NULL;
	imp->sgt = NULL;
	imp->invalidated = false;
	if (imp->pinned)
		dma_buf_unpin(imp->attach);
	imp->pinned = false;
}

static const char *slow_fence_name(struct dma_fence *fence)
{
	return "dmabuf_importer";
}

static const struct dma_fence_ops slow_fence_ops = {
	.get_driver_name = slow_fence_name,
	.get_timeline_name = slow_fence_name,
};

/* IMP_SLOW_FENCE: the "hardware" finished what it was doing. */
static void slow_fence_signal(struct work_struct *work)
{
	struct importer *imp = container_of(to_delayed_work(work),
					    struct importer, fence_signal);
	struct dma_fence *fence;

	dma_resv_lock(imp->dmabuf->resv, NULL);
	fence = imp->fence;
	imp->fence = NULL;
	dma_resv_unlock(imp->dmabuf->resv);
	if (fence) {
		dma_fence_signal(fence);
		dma_fence_put(fence);
	}
}

/* IMP_SLOW_FENCE: a fence for DMA still in flight after move_notify. */
static void add_slow_fence(struct importer *imp)
{
	struct dma_fence *fence;

	if (imp->fence || dma_resv_reserve_fences(imp->dmabuf->resv, 1))
		return;
	fence = kzalloc(sizeof(*fence), GFP_KERNEL);
	if (!fence)
		return;
	dma_fence_init(fence, &slow_fence_ops, &imp->fence_lock,
		       imp->fence_context, imp->moves);
	dma_resv_add_fence(imp->dmabuf->resv, fence, DMA_RESV_USAGE_BOOKKEEP);
	imp->fence = fence;
	schedule_delayed_work(&imp->fence_signal,
			      msecs_to_jiffies(imp->slow_ms));
}

/* IMP_SLOW_UNMAP: the mapping goes back late. */
static void slow_unmap(struct work_struct *work)
{
	struct importer *imp = container_of(to_delayed_work(work),
					    struct importer, slow_unmap);

	dma_resv_lock(imp->dmabuf->resv, NULL);
	if (imp->invalidated)
		importer_unmap(imp);
	dma_resv_unlock(imp->dmabuf->resv);
}

/* The exporter moved or revoked the memory: give the mapping back. */
static void importer_move_notify(struct dma_buf_attachment *attach)
{
	struct importer *imp = attach->importer_priv;

	imp->moves++;
	if (imp->slow_mode == IMP_SLOW_UNMAP && (imp->ranges || imp->sgt)) {
		imp->invalidated = true;
		schedule_delayed_work(&imp->slow_unmap,
				      msecs_to_jiffies(imp->slow_ms ?:
						       IMP_SLOW_HOLD_MS));
		return;
	}
	if (imp->slow_mode == IMP_SLOW_FENCE && (imp->ranges || imp->sgt))
		add_slow_fence(imp);
	importer_unmap(imp);
}

/* Let the late unmap and the fence happen now. */
static void importer_finish_slow(struct importer *imp)
{
	mod_delayed_work(system_wq, &imp->slow_unmap, 0);
	flush_delayed_work(&imp->slow_unmap);
	mod_delayed_work(system_wq, &imp->fence_signal, 0);
	flush_delayed_work(&imp->fence_signal);
}

/* Indexed by IMP_SGT: the one kind of mapping the attachment takes. */
static const struct dma_buf_attach_ops ops_p2p[2] = {
	{ .allow_peer2peer = true, .move_notify = importer_move_notify,
	  .map_types = BIT(DMA_BUF_MAP_RANGES) },
	{ .allow_peer2peer = true, .move_notify = importer_move_notify,
	  .map_types = BIT(DMA_BUF_MAP_SGT) },
};

static const struct dma_buf_attach_ops ops_p2p_revocable[2] = {
	{ .allow_peer2peer = true, .allow_revoke = true,
	  .move_notify = importer_move_notify,
	  .map_types = BIT(DMA_BUF_MAP_RANGES) },
	{ .allow_peer2peer = true, .allow_revoke = true,
	  .move_notify = importer_move_notify,
	  .map_types = BIT(DMA_BUF_MAP_SGT) },
};

static const struct dma_buf_attach_ops ops_plain[2] = {
	{ .move_notify = importer_move_notify,
	  .map_types = BIT(DMA_BUF_MAP_RANGES) },
	{ .move_notify = importer_move_notify,
	  .map_types = BIT(DMA_BUF_MAP_SGT) },
};

static void importer_detach(struct importer *imp)
{
	if (!imp->attach)
		return;
	importer_finish_slow(imp);
	dma_resv_lock(imp->dmabuf->resv, NULL);
	importer_unmap(imp);
	dma_resv_unlock(imp->dmabuf->resv);
	dma_buf_detach(imp->dmabuf, imp->attach);
	dma_buf_put(imp->dmabuf);
	imp->attach = NULL;
	imp->dmabuf = NULL;
}

static int importer_attach(struct importer *imp, struct imp_attach __user *uarg)
{
	const struct dma_buf_attach_ops *ops = NULL;
	struct dma_buf_attachment *attach;
	struct imp_attach arg;
	struct dma_buf *dmabuf;
	bool sgt;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (imp->attach)
		return -EBUSY;
	if (arg.flags & ~(IMP_DYNAMIC | IMP_P2P | IMP_REVOCABLE | IMP_SGT))
		return -EINVAL;
	/* Without IMP_DYNAMIC there are no ops: sg_tables, as in 6.12. */
	sgt = !!(arg.flags & IMP_SGT);
	if (arg.flags & IMP_DYNAMIC) {
		if (arg.flags & IMP_REVOCABLE)
			ops = &ops_p2p_revocable[sgt];
		else
			ops = arg.flags & IMP_P2P ? &ops_p2p[sgt] : &ops_plain[sgt];
	}

	dmabuf = dma_buf_get(arg.fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	attach = dma_buf_dynamic_attach(dmabuf, &edu->pdev->dev, ops, imp);
	if (IS_ERR(attach)) {
		dma_buf_put(dmabuf);
		return PTR_ERR(attach);
	}
	imp->dmabuf = dmabuf;
	imp->attach = attach;
	return 0;
}

/* Copy the DMA side of the current mapping out, @room entries at most. */
static u32 copy_mapping(struct importer *imp, struct imp_range *out, u32 room)
{
	struct scatterlist *sg;
	u32 n = 0;
	int i;

	if (imp->ranges) {
		for (i = 0; i < imp->ranges->nr; i++, n++) {
			if (n < room) {
				out[n].addr = imp->ranges->ranges[i].addr;
				out[n].len = imp->ranges->ranges[i].len;
			}
		}
		return n;
	}
	for_each_sgtable_dma_sg(imp->sgt, sg, i) {
		if (n < room) {
			out[n].addr = sg_dma_address(sg);
			out[n].len = sg_dma_len(sg);
		}
		n++;
	}
	return n;
}

static int importer_map(struct importer *imp, struct imp_map __user *uarg)
{
	struct imp_range *out = NULL;
	struct imp_map arg;
	u32 room = 0;
	int ret = 0;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!imp->attach)
		return -ENXIO;
	if (arg.api > IMP_API_SGT || arg.nr > 65536)
		return -EINVAL;
	/* The API of the kind chosen at attach; the core warns at others. */
	if (arg.api != (imp->attach->map_type == DMA_BUF_MAP_SGT ?
			IMP_API_SGT : IMP_API_RANGES))
		return -EINVAL;
	if (arg.nr) {
		out = kvcalloc(arg.nr, sizeof(*out), GFP_KERNEL);
		if (!out)
			return -ENOMEM;
	}

	dma_resv_lock(imp->dmabuf->resv, NULL);
	if (imp->ranges || imp->sgt) {
		ret = -EBUSY;
		goto out_unlock;
	}
	if (arg.pin) {
		ret = dma_buf_pin(imp->attach);
		if (ret)
			goto out_unlock;
		imp->pinned = true;
	}
	if (arg.api == IMP_API_RANGES) {
		const struct dma_buf_ranges *r;

		r = dma_buf_map_ranges(imp->attach, DMA_BIDIRECTIONAL);
		if (IS_ERR(r))
			ret = PTR_ERR(r);
		else
			imp->ranges = r;
	} else {
		struct sg_table *sgt;

		sgt = dma_buf_map_attachment(imp->attach, DMA_BIDIRECTIONAL);
		if (IS_ERR(sgt))
			ret = PTR_ERR(sgt);
		else
			imp->sgt = sgt;
	}
	if (ret) {
		importer_unmap(imp);
		goto out_unlock;
	}
	room = arg.nr;
	arg.nr = copy_mapping(imp, out, room);
out_unlock:
	dma_resv_unlock(imp->dmabuf->resv);

	/* @nr says how many there are; only @room of them were kept. */
	if (!ret && out &&
	    copy_to_user(u64_to_user_ptr(arg.ranges), out,
			 min(arg.nr, room) * sizeof(*out)))
		ret = -EFAULT;
	if (!ret && copy_to_user(uarg, &arg, sizeof(arg)))
		ret = -EFAULT;
	kvfree(out);
	return ret;
}

/*
 * The DMA address of [@offset, @offset + @len) of the attachment's mapping
 * if one range or entry holds it; -ENODEV when nothing is mapped.
 */
static int attach_dma_address(struct importer *imp, u64 offset, u32 len,
			      dma_addr_t *addr)
{
	struct scatterlist *sg;
	int i;

	if (imp->invalidated)
		return -ENODEV;
	if (imp->ranges) {
		for (i = 0; i < imp->ranges->nr; i++) {
			const struct dma_buf_range *r = &imp->ranges->ranges[i];

			if (offset < r->len) {
				if (len > r->len - offset)
					return -EINVAL;
				*addr = r->addr + offset;
				return 0;
			}
			offset -= r->len;
		}
		return -EINVAL;
	}
	if (!imp->sgt)
		return -ENODEV;
	for_each_sgtable_dma_sg(imp->sgt, sg, i) {
		if (offset < sg_dma_len(sg)) {
			if (len > sg_dma_len(sg) - offset)
				return -EINVAL;
			*addr = sg_dma_address(sg) + offset;
			return 0;
		}
		offset -= sg_dma_len(sg);
	}
	return -EINVAL;
}

/* One edu transfer between its buffer and @addr; waits for completion. */
static int edu_transfer(dma_addr_t addr, u32 len, bool to_ram)
{
	unsigned long timeout = jiffies + 5 * HZ;

	writeq(to_ram ? EDU_BUFFER : addr, edu->regs + EDU_DMA_SRC);
	writeq(to_ram ? addr : EDU_BUFFER, edu->regs + EDU_DMA_DST);
	writeq(len, edu->regs + EDU_DMA_COUNT);
	writeq(EDU_CMD_START | (to_ram ? EDU_CMD_TO_RAM : 0),
	       edu->regs + EDU_DMA_CMD);
	while (readq(edu->regs + EDU_DMA_CMD) & EDU_CMD_START) {
		if (time_after(jiffies, timeout))
			return -ETIMEDOUT;
		usleep_range(500, 1000);
	}
	return 0;
}

static int importer_status(struct importer *imp, struct imp_status __user *uarg)
{
	struct imp_status st = {};

	if (imp->attach) {
		dma_resv_lock(imp->dmabuf->resv, NULL);
		st.moves = imp->moves;
		st.mapped = imp->ranges || imp->sgt;
		st.dma_count = imp->dma_count;
		dma_resv_unlock(imp->dmabuf->resv);
	}
	return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
}

/* A dynamic umem's move_notify: what an RDMA driver does, unmap. */
static void umem_move_notify(struct dma_buf_attachment *attach)
{
	struct ib_umem_dmabuf *umem_dmabuf = attach->importer_priv;
	struct importer *imp = umem_dmabuf->private;

	/* Before IMP_UMEM_GET set private, nothing was mapped. */
	if (imp)
		imp->invalidations++;
	ib_umem_dmabuf_unmap_pages(umem_dmabuf);
}

static const struct dma_buf_attach_ops umem_ops = {
	.allow_peer2peer = true,
	.allow_revoke = true,
	.map_types = BIT(DMA_BUF_MAP_RANGES),
	.move_notify = umem_move_notify,
};

/*
 * The pinned revocable umem's revoke callback: stop using it.  A driver
 * fences its hardware here, so the umem must still be mapped.
 */
static void umem_revoke(void *priv)
{
	struct importer *imp = priv;

	imp->revoke_calls++;
	if (imp->umem->ranges)
		imp->revoked_mapped++;
}

static struct dma_resv *umem_resv(struct importer *imp)
{
	return imp->umem->attach->dmabuf->resv;
}

#define UMEM_MAX_BLOCKS	(1u << 20)

/* Lock held, umem mapped: the page size, and the blocks into @out. */
static int umem_walk(struct importer *imp, struct imp_umem *arg, u64 *out)
{
	struct ib_umem *umem = &imp->umem->umem;
	struct ib_block_iter biter;
	u32 n = 0;

	if (!imp->umem->ranges)
		return -ENODEV;
	imp->iova = arg->iova;
	imp->pgsz = ib_umem_find_best_pgsz(umem, arg->pgsz_bitmap, arg->iova);
	if (!imp->pgsz)
		return -EINVAL;
	arg->pgsz = imp->pgsz;
	arg->page_blocks = ib_umem_num_dma_blocks(umem, PAGE_SIZE);
	rdma_umem_for_each_dma_block(umem, &biter, imp->pgsz) {
		if (n < arg->nr_blocks)
			out[n] = rdma_block_iter_dma_address(&biter);
		n++;
	}
	arg->nr_blocks = n;
	return 0;
}

/* Hand the walk's results back; @out holds the first blocks. */
static int umem_walk_done(struct imp_umem *arg, struct imp_umem __user *uarg,
			  u64 *out, u32 room)
{
	int ret = 0;

	if (out && copy_to_user(u64_to_user_ptr(arg->blocks), out,
				min(room, arg->nr_blocks) * sizeof(*out)))
		ret = -EFAULT;
	if (!ret && copy_to_user(uarg, arg, sizeof(*arg)))
		ret = -EFAULT;
	kvfree(out);
	return ret;
}

static u64 *umem_walk_buffer(struct imp_umem *arg)
{
	if (arg->nr_blocks > UMEM_MAX_BLOCKS)
		arg->nr_blocks = UMEM_MAX_BLOCKS;
	if (!arg->nr_blocks)
		return NULL;
	return kvcalloc(arg->nr_blocks, sizeof(u64), GFP_KERNEL);
}

static int importer_umem_get(struct importer *imp, struct imp_umem __user *uarg)
{
	struct ib_umem_dmabuf *umem;
	struct imp_umem arg;
	u64 *out;
	u32 room;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (imp->umem)
		return -EBUSY;
	if (arg.mode > IMP_UMEM_PINNED_REVOCABLE)
		return -EINVAL;
	/* Counted per umem; they stay readable after its release. */
	imp->invalidations = 0;
	imp->revoke_calls = 0;
	imp->revoked_mapped = 0;
	out = umem_walk_buffer(&arg);
	room = arg.nr_blocks;
	if (room && !out)
		return -ENOMEM;

	switch (arg.mode) {
	case IMP_UMEM_DYNAMIC:
		umem = ib_umem_dmabuf_get(edu->ibdev, arg.offset, arg.length,
					  arg.fd, IB_ACCESS_LOCAL_WRITE, &umem_ops);
		if (IS_ERR(umem))
			goto err_get;
		dma_resv_lock(umem->attach->dmabuf->resv, NULL);
		umem->private = imp;
		ret = ib_umem_dmabuf_map_pages(umem);
		break;
	case IMP_UMEM_PINNED:
		umem = ib_umem_dmabuf_get_pinned(edu->ibdev, arg.offset,
						 arg.length, arg.fd,
						 IB_ACCESS_LOCAL_WRITE);
		if (IS_ERR(umem))
			goto err_get;
		dma_resv_lock(umem->attach->dmabuf->resv, NULL);
		ret = 0;
		break;
	case IMP_UMEM_PINNED_REVOCABLE:
		umem = ib_umem_dmabuf_get_pinned_revocable_and_lock(edu->ibdev,
				arg.offset, arg.length, arg.fd,
				IB_ACCESS_LOCAL_WRITE);
		if (IS_ERR(umem))
			goto err_get;
		ib_umem_dmabuf_set_revoke_locked(umem, umem_revoke, imp);
		ret = 0;
		break;
	}
	imp->umem = umem;
	if (!ret)
		ret = umem_walk(imp, &arg, out);
	dma_resv_unlock(umem->attach->dmabuf->resv);
	if (ret) {
		ib_umem_release(&umem->umem);
		imp->umem = NULL;
		kvfree(out);
		return ret;
	}
	return umem_walk_done(&arg, uarg, out, room);

err_get:
	kvfree(out);
	return PTR_ERR(umem);
}

static int importer_umem_map(struct importer *imp, struct imp_umem __user *uarg)
{
	struct imp_umem arg;
	u64 *out;
	u32 room;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!imp->umem)
		return -ENXIO;
	out = umem_walk_buffer(&arg);
	room = arg.nr_blocks;
	if (room && !out)
		return -ENOMEM;
	dma_resv_lock(umem_resv(imp), NULL);
	/* A revoked umem is gone for good: say so as the exporter would. */
	ret = imp->umem->revoked ? -ENODEV : ib_umem_dmabuf_map_pages(imp->umem);
	if (!ret)
		ret = umem_walk(imp, &arg, out);
	dma_resv_unlock(umem_resv(imp));
	if (ret) {
		kvfree(out);
		return ret;
	}
	return umem_walk_done(&arg, uarg, out, room);
}

static int importer_umem_status(struct importer *imp,
				struct imp_umem_status __user *uarg)
{
	struct imp_umem_status st = {};

	if (imp->umem) {
		dma_resv_lock(umem_resv(imp), NULL);
		st.mapped = !!imp->umem->ranges;
		st.revoked = imp->umem->revoked;
	}
	/* They outlive the umem, whose release revokes; written under its lock. */
	st.invalidations = imp->invalidations;
	st.revoke_calls = imp->revoke_calls;
	st.revoked_mapped = imp->revoked_mapped;
	if (imp->umem)
		dma_resv_unlock(umem_resv(imp));
	return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
}

/*
 * The DMA address of MR byte @offset, from the umem's blocks; -ENODEV when
 * the umem is not mapped or was revoked.
 */
static int umem_dma_address(struct importer *imp, u64 offset, u32 len,
			    dma_addr_t *addr)
{
	u64 pos = (imp->iova & (imp->pgsz - 1)) + offset;
	struct ib_block_iter biter;
	u64 k = pos / imp->pgsz;

	if (!imp->umem->ranges || imp->umem->revoked)
		return -ENODEV;
	if (offset >= imp->umem->umem.length ||
	    len > imp->umem->umem.length - offset ||
	    (pos & (imp->pgsz - 1)) + len > imp->pgsz)
		return -EINVAL;
	rdma_umem_for_each_dma_block(&imp->umem->umem, &biter, imp->pgsz) {
		if (!k--) {
			*addr = rdma_block_iter_dma_address(&biter) +
				(pos & (imp->pgsz - 1));
			return 0;
		}
	}
	return -EINVAL;
}

static void importer_umem_put(struct importer *imp)
{
	if (!imp->umem)
		return;
	ib_umem_release(&imp->umem->umem);
	imp->umem = NULL;
}

/* What the allocator hands out for a kvmalloc() of @size bytes at @p. */
static u64 kv_bytes(const void *p, size_t size)
{
	return is_vmalloc_addr(p) ? PAGE_ALIGN(size) : kmalloc_size_roundup(size);
}

/*
 * Bytes of an sg_table and its scatterlist arrays, as sg_alloc_table()
 * allocates them: chunks of SG_MAX_SINGLE_ALLOC entries, a page each, the
 * last entry of a full chunk chaining to the next; a short last chunk
 * comes from kmalloc.  A table with a DMA side only (from a range
 * exporter) has orig_nents 0 and was allocated for its nents.
 */
static u64 sgt_bytes(const struct sg_table *sgt)
{
	unsigned int left = max(sgt->orig_nents, sgt->nents);
	u64 bytes = sizeof(*sgt);

	while (left) {
		unsigned int n = min_t(unsigned int, left, SG_MAX_SINGLE_ALLOC);

		if (n == SG_MAX_SINGLE_ALLOC)
			bytes += PAGE_SIZE;
		else
			bytes += kmalloc_size_roundup(n * sizeof(struct scatterlist));
		left -= left > n ? n - 1 : n;
	}
	return bytes;
}

/*
 * Bytes of a range list: dma_buf_ranges_alloc() keeps one pointer of the
 * core's in front of what the importer sees.
 */
static u64 ranges_bytes(const struct dma_buf_ranges *ranges)
{
	return kv_bytes(ranges, sizeof(void *) +
			struct_size(ranges, ranges, ranges->nr));
}

/* A dynamic P2P importer that only attaches: nothing to drop on a move. */
static void bench_move_notify(struct dma_buf_attachment *attach)
{
}

static const struct dma_buf_attach_ops bench_attach_ops = {
	.allow_peer2peer = true,
	.map_types = BIT(DMA_BUF_MAP_RANGES),
	.move_notify = bench_move_notify,
};

/*
 * IMP_BENCH_ATTACH: what a dynamic importer's attachment caches.  A
 * static exporter maps once at attach for it: an exporter with only range
 * ops keeps its ranges, where 6.12's core built the whole sg_table.
 */
static int bench_attach(struct imp_bench *arg, u64 *ns)
{
	struct dma_buf_attachment *attach;
	struct dma_buf *dmabuf;
	u64 t0, t1, t2;

	dmabuf = dma_buf_get(arg->fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	t0 = ktime_get_ns();
	attach = dma_buf_dynamic_attach(dmabuf, &edu->pdev->dev,
					&bench_attach_ops, NULL);
	t1 = ktime_get_ns();
	if (IS_ERR(attach)) {
		dma_buf_put(dmabuf);
		return PTR_ERR(attach);
	}
	arg->entries = 0;
	arg->bytes = 0;
	if (attach->ranges) {
		arg->entries = attach->ranges->nr;
		arg->bytes = ranges_bytes(attach->ranges);
	}
	if (attach->sgt) {
		arg->entries += max(attach->sgt->orig_nents, attach->sgt->nents);
		arg->bytes += sgt_bytes(attach->sgt);
	}
	t2 = ktime_get_ns();
	dma_buf_detach(dmabuf, attach);
	*ns = t1 - t0 + ktime_get_ns() - t2;
	dma_buf_put(dmabuf);
	return 0;
}

/* Keeps the block walks of IMP_BENCH_UMEM* from being optimised away. */
static u64 bench_sink;

/* What a driver does with a mapped umem: pick the block size, walk the blocks. */
static int bench_walk_blocks(struct ib_umem *umem, struct imp_bench *arg)
{
	unsigned long pgsz = ib_umem_find_best_pgsz(umem, arg->pgsz_bitmap, 0);
	struct ib_block_iter biter;
	u64 n = 0;

	if (!pgsz)
		return -EINVAL;
	rdma_umem_for_each_dma_block(umem, &biter, pgsz) {
		bench_sink += rdma_block_iter_dma_address(&biter);
		n++;
	}
	arg->entries = n;
	arg->bytes = n * sizeof(u64);	/* the page list the driver writes */
	return 0;
}

/* An MR registration: import, map, pick the block size, walk the blocks. */
static int bench_umem(struct importer *imp, struct imp_bench *arg, u64 size)
{
	struct ib_umem_dmabuf *umem;
	int ret;

	umem = ib_umem_dmabuf_get(edu->ibdev, 0, size, arg->fd,
				  IB_ACCESS_LOCAL_WRITE, &umem_ops);
	if (IS_ERR(umem))
		return PTR_ERR(umem);
	umem->private = imp;
	dma_resv_lock(umem->attach->dmabuf->resv, NULL);
	ret = ib_umem_dmabuf_map_pages(umem);
	if (!ret)
		ret = bench_walk_blocks(&umem->umem, arg);
	dma_resv_unlock(umem->attach->dmabuf->resv);
	ib_umem_release(&umem->umem);
	return ret;
}

/*
 * Nothing to do: the sg_table is mapped only while the reservation lock is
 * held, so no move_notify can find it.
 */
static void bench_sgt_move_notify(struct dma_buf_attachment *attach)
{
}

static const struct dma_buf_attach_ops bench_sgt_ops = {
	.allow_peer2peer = true,
	.allow_revoke = true,
	.move_notify = bench_sgt_move_notify,
};

/*
 * The same registration as bench_umem(), as 6.12's umem made it: the
 * dma-buf mapped as an sg_table and an ib_umem over the table (the MR is
 * the whole dma-buf, so 6.12 trimmed nothing).
 */
static int bench_umem_sgt(struct imp_bench *arg, u64 size)
{
	struct ib_umem umem = { .address = 0, .length = size };
	struct dma_buf_attachment *attach;
	struct dma_buf *dmabuf;
	struct sg_table *sgt;
	long ret;

	dmabuf = dma_buf_get(arg->fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	attach = dma_buf_dynamic_attach(dmabuf, edu->ibdev->dma_device,
					&bench_sgt_ops, NULL);
	if (IS_ERR(attach)) {
		dma_buf_put(dmabuf);
		return PTR_ERR(attach);
	}
	dma_resv_lock(dmabuf->resv, NULL);
	sgt = dma_buf_map_attachment(attach, DMA_BIDIRECTIONAL);
	ret = PTR_ERR_OR_ZERO(sgt);
	if (!ret)
		ret = dma_resv_wait_timeout(dmabuf->resv, DMA_RESV_USAGE_KERNEL,
					    false, MAX_SCHEDULE_TIMEOUT);
	if (ret >= 0) {
		umem.sgt_append.sgt.sgl = sgt->sgl;
		umem.sgt_append.sgt.nents = sgt->nents;
		ret = bench_walk_blocks(&umem, arg);
	}
	if (!IS_ERR(sgt))
		dma_buf_unmap_attachment(attach, sgt, DMA_BIDIRECTIONAL);
	dma_resv_unlock(dmabuf->resv);
	dma_buf_detach(dmabuf, attach);
	dma_buf_put(dmabuf);
	return ret;
}

/* One timed repetition of @arg->op; the bookkeeping is not timed. */
static int bench_once(struct importer *imp, struct imp_bench *arg, u64 size,
		      u64 *ns)
{
	const struct dma_buf_ranges *ranges;
	struct sg_table *sgt;
	u64 t0, t1, t2;
	int ret;

	t0 = ktime_get_ns();
	switch (arg->op) {
	case IMP_BENCH_RANGES:
		ranges = dma_buf_map_ranges_unlocked(imp->attach,
						     DMA_BIDIRECTIONAL);
		t1 = ktime_get_ns();
		if (IS_ERR(ranges))
			return PTR_ERR(ranges);
		arg->entries = ranges->nr;
		arg->bytes = ranges_bytes(ranges);
		t2 = ktime_get_ns();
		dma_buf_unmap_ranges_unlocked(imp->attach, ranges,
					      DMA_BIDIRECTIONAL);
		break;
	case IMP_BENCH_SGT:
		sgt = dma_buf_map_attachment_unlocked(imp->attach,
						      DMA_BIDIRECTIONAL);
		t1 = ktime_get_ns();
		if (IS_ERR(sgt))
			return PTR_ERR(sgt);
		arg->entries = max(sgt->orig_nents, sgt->nents);
		arg->bytes = sgt_bytes(sgt);
		t2 = ktime_get_ns();
		dma_buf_unmap_attachment_unlocked(imp->attach, sgt,
						  DMA_BIDIRECTIONAL);
		break;
	case IMP_BENCH_ATTACH:
		return bench_attach(arg, ns);
	case IMP_BENCH_UMEM_SGT:
		ret = bench_umem_sgt(arg, size);
		*ns = ktime_get_ns() - t0;
		return ret;
	default:
		ret = bench_umem(imp, arg, size);
		*ns = ktime_get_ns() - t0;
		return ret;
	}
	*ns = t1 - t0 + ktime_get_ns() - t2;
	return 0;
}

static int importer_bench(struct importer *imp, struct imp_bench __user *uarg)
{
	struct device *dev = &edu->pdev->dev;
	unsigned int old_seg;
	struct imp_bench arg;
	u64 size = 0, *ns;
	int ret = 0;
	u32 i;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.op > IMP_BENCH_UMEM_SGT || !arg.iters ||
	    arg.iters > IMP_BENCH_MAX_ITERS || arg.max_seg > UINT_MAX)
		return -EINVAL;
	if (arg.op == IMP_BENCH_UMEM || arg.op == IMP_BENCH_UMEM_SGT) {
		struct dma_buf *dmabuf = dma_buf_get(arg.fd);

		if (IS_ERR(dmabuf))
			return PTR_ERR(dmabuf);
		size = dmabuf->size;
		dma_buf_put(dmabuf);
	} else if (arg.op != IMP_BENCH_ATTACH) {
		if (!imp->attach)
			return -ENXIO;
		/* The API of the attachment's kind, as for IMP_MAP. */
		if ((arg.op == IMP_BENCH_SGT) !=
		    (imp->attach->map_type == DMA_BUF_MAP_SGT))
			return -EINVAL;
	}
	ns = kvcalloc(arg.iters, sizeof(*ns), GFP_KERNEL);
	if (!ns)
		return -ENOMEM;

	/* The segment size is edu's: one benchmark at a time changes it. */
	mutex_lock(&edu->lock);
	old_seg = dma_get_max_seg_size(dev);
	if (arg.max_seg)
		dma_set_max_seg_size(dev, arg.max_seg);
	for (i = 0; i < arg.iters && !ret; i++) {
		ret = bench_once(imp, &arg, size, &ns[i]);
		if (!ret && fatal_signal_pending(current))
			ret = -EINTR;
		cond_resched();
	}
	dma_set_max_seg_size(dev, old_seg);
	mutex_unlock(&edu->lock);

	if (!ret && (copy_to_user(u64_to_user_ptr(arg.ns), ns,
				  arg.iters * sizeof(*ns)) ||
		     copy_to_user(uarg, &arg, sizeof(arg))))
		ret = -EFAULT;
	kvfree(ns);
	return ret;
}

/*
 * IMP_DMA and IMP_UMEM_DMA: move bytes between user memory and the
 * imported memory through edu's buffer.  The dma-buf's lock is held
 * across the transfer, so a revoke waits for it and none starts after.
 */
static int importer_copy(struct importer *imp, struct imp_dma __user *uarg,
			 bool umem)
{
	struct dma_resv *resv;
	dma_addr_t target;
	struct imp_dma arg;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!arg.len || arg.len > IMP_DMA_MAX)
		return -EINVAL;
	if (umem ? !imp->umem : !imp->attach)
		return -ENXIO;
	resv = umem ? umem_resv(imp) : imp->dmabuf->resv;

	mutex_lock(&edu->lock);
	if (arg.to_dmabuf &&
	    copy_from_user(edu->bounce, u64_to_user_ptr(arg.data), arg.len)) {
		ret = -EFAULT;
		goto out;
	}
	dma_resv_lock(resv, NULL);
	ret = umem ? umem_dma_address(imp, arg.offset, arg.len, &target) :
		     attach_dma_address(imp, arg.offset, arg.len, &target);
	if (!ret) {
		imp->dma_count++;
		if (arg.to_dmabuf)
			ret = edu_transfer(edu->bounce_dma, arg.len, false) ?:
			      edu_transfer(target, arg.len, true);
		else
			ret = edu_transfer(target, arg.len, false) ?:
			      edu_transfer(edu->bounce_dma, arg.len, true);
	}
	dma_resv_unlock(resv);
	if (!ret && !arg.to_dmabuf &&
	    copy_to_user(u64_to_user_ptr(arg.data), edu->bounce, arg.len))
		ret = -EFAULT;
out:
	mutex_unlock(&edu->lock);
	return ret;
}

static int importer_set_slow(struct importer *imp, struct imp_slow __user *uarg)
{
	struct imp_slow arg;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.mode > IMP_SLOW_FENCE || arg.delay_ms > 60000 ||
	    (arg.mode == IMP_SLOW_FENCE && !arg.delay_ms))
		return -EINVAL;
	if (!imp->attach)
		return -ENXIO;
	dma_resv_lock(imp->dmabuf->resv, NULL);
	imp->slow_mode = arg.mode;
	imp->slow_ms = arg.delay_ms;
	dma_resv_unlock(imp->dmabuf->resv);
	return 0;
}

static long importer_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	struct importer *imp = file->private_data;
	void __user *uarg = (void __user *)arg;
	long ret;

	switch (cmd) {
	case IMP_ATTACH:
		return importer_attach(imp, uarg);
	case IMP_DETACH:
		importer_detach(imp);
		return 0;
	case IMP_MAP:
		return importer_map(imp, uarg);
	case IMP_UNMAP:
		if (!imp->attach)
			return -ENXIO;
		dma_resv_lock(imp->dmabuf->resv, NULL);
		ret = imp->ranges || imp->sgt ? 0 : -ENODEV;
		importer_unmap(imp);
		dma_resv_unlock(imp->dmabuf->resv);
		return ret;
	case IMP_STATUS:
		return importer_status(imp, uarg);
	case IMP_DMA:
		return importer_copy(imp, uarg, false);
	case IMP_UMEM_GET:
		return importer_umem_get(imp, uarg);
	case IMP_UMEM_MAP:
		return importer_umem_map(imp, uarg);
	case IMP_UMEM_STATUS:
		return importer_umem_status(imp, uarg);
	case IMP_UMEM_DMA:
		return importer_copy(imp, uarg, true);
	case IMP_UMEM_PUT:
		importer_umem_put(imp);
		return 0;
	case IMP_BENCH:
		return importer_bench(imp, uarg);
	case IMP_SLOW:
		return importer_set_slow(imp, uarg);
	default:
		return -ENOTTY;
	}
}

static int importer_open(struct inode *inode, struct file *file)
{
	struct importer *imp = kzalloc(sizeof(*imp), GFP_KERNEL);

	if (!imp)
		return -ENOMEM;
	INIT_DELAYED_WORK(&imp->slow_unmap, slow_unmap);
	INIT_DELAYED_WORK(&imp->fence_signal, slow_fence_signal);
	spin_lock_init(&imp->fence_lock);
	imp->fence_context = dma_fence_context_alloc(1);
	file->private_data = imp;
	return 0;
}

static int importer_release(struct inode *inode, struct file *file)
{
	struct importer *imp = file->private_data;

	importer_umem_put(imp);
	importer_detach(imp);
	kfree(imp);
	return 0;
}

static const struct file_operations importer_fops = {
	.owner = THIS_MODULE,
	.open = importer_open,
	.release = importer_release,
	.unlocked_ioctl = importer_ioctl,
};

static struct miscdevice importer_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "dmabuf_importer",
	.fops = &importer_fops,
};

static int edu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int ret;

	if (edu)
		return -EBUSY;
	edu = kzalloc(sizeof(*edu), GFP_KERNEL);
	if (!edu)
		return -ENOMEM;
	edu->pdev = pdev;
	mutex_init(&edu->lock);

	ret = pcim_enable_device(pdev);
	if (ret)
		goto err_free;
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		goto err_free;
	edu->regs = pcim_iomap(pdev, 0, 0);
	ret = -ENOMEM;
	if (!edu->regs)
		goto err_free;
	edu->bounce = dma_alloc_coherent(&pdev->dev, PAGE_SIZE,
					 &edu->bounce_dma, GFP_KERNEL);
	if (!edu->bounce)
		goto err_free;
	edu->ibdev = _ib_alloc_device(sizeof(*edu->ibdev));
	if (!edu->ibdev)
		goto err_bounce;
	edu->ibdev->dma_device = &pdev->dev;
	pci_set_master(pdev);

	ret = misc_register(&importer_misc);
	if (ret)
		goto err_ibdev;
	return 0;

err_ibdev:
	ib_dealloc_device(edu->ibdev);
err_bounce:
	dma_free_coherent(&pdev->dev, PAGE_SIZE, edu->bounce, edu->bounce_dma);
err_free:
	kfree(edu);
	edu = NULL;
	return ret;
}

static void edu_remove(struct pci_dev *pdev)
{
	misc_deregister(&importer_misc);
	pci_clear_master(pdev);
	ib_dealloc_device(edu->ibdev);
	dma_free_coherent(&pdev->dev, PAGE_SIZE, edu->bounce, edu->bounce_dma);
	kfree(edu);
	edu = NULL;
}

static const struct pci_device_id edu_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{}
};
MODULE_DEVICE_TABLE(pci, edu_ids);

static struct pci_driver edu_driver = {
	.name = "dmabuf_importer",
	.id_table = edu_ids,
	.probe = edu_probe,
	.remove = edu_remove,
};
module_pci_driver(edu_driver);

MODULE_DESCRIPTION("Test-only dma-buf importer driving QEMU's edu DMA engine");
MODULE_LICENSE("GPL");
