// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark-only dma-buf exporter of a PCI BAR through ZONE_DEVICE pages:
 * the approach of the 2024 vfio-pci dma-buf series, kept as the baseline
 * the range op is measured against (bench/dmabuf_bench.c).
 *
 * It binds only through driver_override.  /dev/p2p_page_exporter exports
 * [0, size) of BAR 2, giving that part of the BAR struct pages with
 * pci_p2pdma_add_resource() first.  Every mapping is an sg_table with one
 * entry per page, mapped with dma_map_sgtable() for the importing device.
 * Pages live until the driver unbinds, which waits for the open files and
 * the dma-bufs to go.
 */
#include <linux/dma-buf.h>
#include <linux/dma-buf-ranges.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "p2p_page_exporter.h"

MODULE_IMPORT_NS(DMA_BUF);

#define PPE_BAR	2

struct ppe {
	struct pci_dev *pdev;
	struct mutex lock;		/* @covered */
	u64 covered;			/* [0, covered) of the BAR has pages */
	atomic_t users;			/* open files and dma-bufs */
	wait_queue_head_t released;
};

static struct ppe *ppe;

struct ppe_buf {
	unsigned long pfn;		/* first page of the BAR */
	unsigned int nr_pages;
	u64 size;
};

/* The importer must accept P2P memory: these are BAR pages. */
static int ppe_attach(struct dma_buf *dmabuf,
		      struct dma_buf_attachment *attach)
{
	return attach->peer2peer ? 0 : -EOPNOTSUPP;
}

/* Dynamic like the vfio exporter, so every map does the work. */
static int ppe_pin(struct dma_buf_attachment *attach)
{
	return 0;
}

static void ppe_unpin(struct dma_buf_attachment *attach)
{
}

static struct sg_table *ppe_map(struct dma_buf_attachment *attach,
				enum dma_data_direction dir)
{
	struct ppe_buf *buf = attach->dmabuf->priv;
	struct scatterlist *sg;
	struct sg_table *sgt;
	unsigned int i;
	int ret;

	sgt = kzalloc(sizeof(*sgt), GFP_KERNEL);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	ret = sg_alloc_table(sgt, buf->nr_pages, GFP_KERNEL);
	if (ret)
		goto err_free;
	for_each_sgtable_sg(sgt, sg, i)
		sg_set_page(sg, pfn_to_page(buf->pfn + i), PAGE_SIZE, 0);
	ret = dma_map_sgtable(attach->dev, sgt, dir, DMA_ATTR_SKIP_CPU_SYNC);
	if (ret)
		goto err_table;
	return sgt;

err_table:
	sg_free_table(sgt);
err_free:
	kfree(sgt);
	return ERR_PTR(ret);
}

static void ppe_unmap(struct dma_buf_attachment *attach, struct sg_table *sgt,
		      enum dma_data_direction dir)
{
	dma_unmap_sgtable(attach->dev, sgt, dir, DMA_ATTR_SKIP_CPU_SYNC);
	sg_free_table(sgt);
	kfree(sgt);
}

static void ppe_put(void)
{
	if (atomic_dec_and_test(&ppe->users))
		wake_up_all(&ppe->released);
}

static void ppe_release(struct dma_buf *dmabuf)
{
	kfree(dmabuf->priv);
	ppe_put();
}

static const struct dma_buf_ops ppe_ops = {
	.attach = ppe_attach,
	.pin = ppe_pin,
	.unpin = ppe_unpin,
	.map_dma_buf = ppe_map,
	.unmap_dma_buf = ppe_unmap,
	.release = ppe_release,
};

/*
 * PPE_STATIC_RANGES: the same BAR part as one range, with no struct pages
 * and no pin: a static exporter, whose dynamic importers get the mapping
 * cached at attach.
 */
static struct dma_buf_ranges *ppe_map_ranges(struct dma_buf_attachment *attach,
					     enum dma_data_direction dir)
{
	struct ppe_buf *buf = attach->dmabuf->priv;
	struct dma_buf_ranges *ranges;

	ranges = dma_buf_ranges_alloc(1, GFP_KERNEL);
	if (!ranges)
		return ERR_PTR(-ENOMEM);
	ranges->ranges[0].len = buf->size;
	ranges->ranges[0].addr = dma_map_resource(attach->dev,
						  PFN_PHYS(buf->pfn), buf->size,
						  dir, DMA_ATTR_SKIP_CPU_SYNC);
	if (dma_mapping_error(attach->dev, ranges->ranges[0].addr)) {
		dma_buf_ranges_free(ranges);
		return ERR_PTR(-EIO);
	}
	return ranges;
}

static void ppe_unmap_ranges(struct dma_buf_attachment *attach,
			     struct dma_buf_ranges *ranges,
			     enum dma_data_direction dir)
{
	dma_unmap_resource(attach->dev, ranges->ranges[0].addr,
			   ranges->ranges[0].len, dir, DMA_ATTR_SKIP_CPU_SYNC);
	dma_buf_ranges_free(ranges);
}

static const struct dma_buf_ops ppe_static_ranges_ops = {
	.attach = ppe_attach,
	.map_dma_ranges = ppe_map_ranges,
	.unmap_dma_ranges = ppe_unmap_ranges,
	.release = ppe_release,
};

/* Give [0, @size) of the BAR struct pages; the time it took in @ns. */
static int ppe_cover(u64 size, u64 *ns)
{
	u64 start;
	int ret = 0;

	*ns = 0;
	mutex_lock(&ppe->lock);
	if (size > ppe->covered) {
		start = ktime_get_ns();
		ret = pci_p2pdma_add_resource(ppe->pdev, PPE_BAR,
					      size - ppe->covered,
					      ppe->covered);
		*ns = ktime_get_ns() - start;
		if (!ret)
			ppe->covered = size;
	}
	mutex_unlock(&ppe->lock);
	return ret;
}

static long ppe_export(struct ppe_export __user *uarg)
{
	DEFINE_DMA_BUF_EXPORT_INFO(exp_info);
	struct ppe_export arg;
	struct dma_buf *dmabuf;
	struct ppe_buf *buf;
	int fd, ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!arg.size || !IS_ALIGNED(arg.size, SZ_2M) ||
	    arg.size > pci_resource_len(ppe->pdev, PPE_BAR) ||
	    arg.size >> PAGE_SHIFT > UINT_MAX ||
	    (arg.flags & ~PPE_STATIC_RANGES))
		return -EINVAL;
	arg.create_ns = 0;
	if (!(arg.flags & PPE_STATIC_RANGES)) {
		ret = ppe_cover(arg.size, &arg.create_ns);
		if (ret)
			return ret;
	}

	buf = kzalloc(sizeof(*buf), GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	buf->pfn = PHYS_PFN(pci_resource_start(ppe->pdev, PPE_BAR));
	buf->nr_pages = arg.size >> PAGE_SHIFT;
	buf->size = arg.size;
	exp_info.ops = arg.flags & PPE_STATIC_RANGES ? &ppe_static_ranges_ops :
						       &ppe_ops;
	exp_info.size = arg.size;
	exp_info.flags = O_RDWR;
	exp_info.priv = buf;
	dmabuf = dma_buf_export(&exp_info);
	if (IS_ERR(dmabuf)) {
		kfree(buf);
		return PTR_ERR(dmabuf);
	}
	atomic_inc(&ppe->users);

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		dma_buf_put(dmabuf);
		return fd;
	}
	arg.fd = fd;
	if (copy_to_user(uarg, &arg, sizeof(arg))) {
		put_unused_fd(fd);
		dma_buf_put(dmabuf);
		return -EFAULT;
	}
	fd_install(fd, dmabuf->file);
	return 0;
}

static long ppe_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	if (cmd != PPE_EXPORT)
		return -ENOTTY;
	return ppe_export((struct ppe_export __user *)arg);
}

static int ppe_open(struct inode *inode, struct file *file)
{
	atomic_inc(&ppe->users);
	return 0;
}

static int ppe_file_release(struct inode *inode, struct file *file)
{
	ppe_put();
	return 0;
}

static const struct file_operations ppe_fops = {
	.owner = THIS_MODULE,
	.open = ppe_open,
	.release = ppe_file_release,
	.unlocked_ioctl = ppe_ioctl,
};

static struct miscdevice ppe_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "p2p_page_exporter",
	.fops = &ppe_fops,
};

static int ppe_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int ret;

	if (ppe)
		return -EBUSY;
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ppe = kzalloc(sizeof(*ppe), GFP_KERNEL);
	if (!ppe)
		return -ENOMEM;
	ppe->pdev = pdev;
	mutex_init(&ppe->lock);
	init_waitqueue_head(&ppe->released);
	ret = misc_register(&ppe_misc);
	if (ret) {
		kfree(ppe);
		ppe = NULL;
	}
	return ret;
}

/* The pages go with the device (devm): wait until nothing can map them. */
static void ppe_remove(struct pci_dev *pdev)
{
	misc_deregister(&ppe_misc);
	wait_event(ppe->released, !atomic_read(&ppe->users));
	kfree(ppe);
	ppe = NULL;
}

/* No IDs: only a driver_override names this driver. */
static const struct pci_device_id ppe_ids[] = {
	{}
};

static struct pci_driver ppe_driver = {
	.name = "p2p_page_exporter",
	.id_table = ppe_ids,
	.probe = ppe_probe,
	.remove = ppe_remove,
};
module_pci_driver(ppe_driver);

MODULE_DESCRIPTION("Benchmark-only dma-buf exporter of a BAR through P2P struct pages");
MODULE_LICENSE("GPL");
