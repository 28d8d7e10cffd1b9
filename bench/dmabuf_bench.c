// SPDX-License-Identifier: GPL-2.0
/*
 * The guest side of make bench: what it costs to give edu a slice
 * [0, size) of ivshmem's BAR 2, by method and slice size:
 *
 *   ranges   vfio-pci dma-buf, dma_buf_map_ranges() + unmap
 *   ranges-4k  the same for [4 KiB, size), which the IOMMU can only map
 *            with 4 KiB pages (only with an IOMMU)
 *   ranges-list  a dma-buf of LIST_NR separate 64 KiB slices: memory and
 *            time per range (its row's size is the dma-buf's)
 *   sgt64k   the same dma-buf through the sg_table shim, for an importer
 *            with a 64 KiB maximum segment (the PCI default)
 *   sgt4g    the same, for an importer with a 4 GiB maximum segment
 *   pages    ZONE_DEVICE pages for the BAR (p2p_page_exporter.ko), one
 *            sg_table entry per page, dma_map_sgtable() (the 2024 seed)
 *   umem     RDMA MR import of the vfio dma-buf: get, map, block walk,
 *            release, for a driver with 4K|2M|1G pages (irdma's bitmap)
 *   umem-sgt the same registration with the umem over an sg_table, as
 *            6.12's umem made it, with 4 GiB segments (irdma, efa and
 *            bnxt_re set UINT_MAX): same bitmap and exporter, only the
 *            list differs (the core builds the table from the ranges, as
 *            for any importer still on the sg_table API)
 *   umem-bnxt  umem for every power of two 4K to 1G: bnxt_re's bitmap,
 *            and mlx5's for dma-buf MRs now, on a device whose largest
 *            MTT entity is 1 GiB
 *   umem4k   the same for a driver with PAGE_SIZE pages only (mlx5's
 *            dma-buf MRs in 6.12)
 *   attach   a dynamic importer attaching to a static exporter of the
 *            same slice with range ops only (p2p_page_exporter.ko): what
 *            the attachment caches (6.12's core built the sg_table that
 *            sgt64k measures)
 *
 * and, with an IOMMU, how a VMM maps the slice for a guest's P2P DMA,
 * ivshmem's own IOMMU domain standing in for the guest's:
 *
 *   type1-bar  VFIO_IOMMU_MAP_DMA of the BAR's mmap + UNMAP_DMA, as on
 *            the legacy backend: type1 looks the PFNs up page by page
 *            (the mmap is faulted in by the untimed first run)
 *   mapfile-bar  IOMMU_IOAS_MAP_FILE of a dma-buf of the slice + UNMAP,
 *            as QEMU 11 does on the iommufd backend
 *   mapfile-memfd / map-memfd  guest RAM in a populated memfd of the
 *            slice's size (up to MEMFD_MAX): IOMMU_IOAS_MAP_FILE of the
 *            memfd against IOMMU_IOAS_MAP of its mmap, + UNMAP
 *   areas    N = 1 to 10,000 (-a) one-page areas of a BAR dma-buf in
 *            the IOAS, made by one MAP_FILE each or by IOAS_COPYs of one:
 *            decode off (the core unmaps every area) and decode on (it
 *            maps them again), the fastest of 3 cycles, and one UNMAP of
 *            them all, so the time per area shows whether the work is
 *            linear in N
 *
 * The importer module times each repetition in the kernel; the VMM
 * methods are timed around their ioctls.  One line per
 * (method, size) on stdout, tab separated, for scripts/bench:
 *
 *   row  method size reps median p25 p75 entries bytes iommu_bytes
 *   areas  how N revoke_ns restore_ns unmap_ns
 *   pages-setup size create_ns memmap_bytes
 *   info key value
 *
 * With -c it also checks what must hold whatever the timings (one range
 * per slice, one entry per 64 KiB or page, blocks of 2 MiB or more, memmap
 * of 64 bytes per page, one cached range per attach, an IOVA aligned to
 * the dma-buf up to 1 GiB and every byte unmapped) and exits 1 if
 * anything does not.
 */
#include <getopt.h>
#include <time.h>

#include <sys/mman.h>

#include "iommufd_util.h"
#include "p2p_page_exporter.h"

#define SZ_2M		(2 * SZ_1M)
#define SZ_1G		(1024 * SZ_1M)
#define PAGE_SZ		SZ_4K
#define MAX_REPS	200
#define MIN_REPS	5
#define LIST_NR		1024
#define MEMFD_MAX	SZ_1G

static uint64_t budget_ns = 1000000000ull;	/* per method and size */
static uint64_t pages_budget_ns = 120000000000ull;
static int checking;
static uint32_t areas_max = 10000;	/* -a */
static int have_iommu;
static int failures;

#define fail(...) do { printf("FAIL: " __VA_ARGS__); printf("\n"); \
		       failures++; } while (0)
#define die(...) do { fprintf(stderr, "dmabuf-bench: " __VA_ARGS__); \
		      fprintf(stderr, " (%s)\n", strerror(errno)); exit(2); \
		      } while (0)

struct result {
	uint64_t reps, median, p25, p75, entries, bytes, iommu_bytes;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t vmstat(const char *key)
{
	char buf[16384], *p;
	size_t n = strlen(key);

	if (read_file("/proc/vmstat", buf, sizeof(buf)))
		die("reading /proc/vmstat");
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, n) && p[n] == ' ')
			return strtoull(p + n + 1, NULL, 10);
	die("no %s in /proc/vmstat", key);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort the @reps times in @ns into @r's median and quartiles. */
static void summarize(uint64_t *ns, uint32_t reps, struct result *r)
{
	qsort(ns, reps, sizeof(ns[0]), cmp_u64);
	r->reps = reps;
	r->median = ns[reps / 2];
	r->p25 = ns[reps / 4];
	r->p75 = ns[reps * 3 / 4];
}

/* @reps repetitions of @b in the kernel; -errno on failure. */
static int bench(int imp, struct imp_bench *b, uint64_t *ns, uint32_t reps)
{
	b->iters = reps;
	b->ns = (uintptr_t)ns;
	return ioctl(imp, IMP_BENCH, b) ? -errno : 0;
}

/*
 * Time @b: one repetition to size the run, then as many as fit in the
 * budget, MIN_REPS to MAX_REPS.
 */
static int measure(int imp, struct imp_bench b, struct result *r)
{
	uint64_t ns[MAX_REPS];
	uint32_t reps;
	int ret;

	ret = bench(imp, &b, ns, 1);
	if (ret)
		return ret;
	reps = ns[0] ? budget_ns / ns[0] : MAX_REPS;
	reps = reps < MIN_REPS ? MIN_REPS : reps > MAX_REPS ? MAX_REPS : reps;
	ret = bench(imp, &b, ns, reps);
	if (ret)
		return ret;
	summarize(ns, reps, r);
	r->entries = b.entries;
	r->bytes = b.bytes;
	return 0;
}

/*
 * Time @op(@ctx) from userspace like measure() does, except that an op
 * slower than the budget is timed once, after the untimed run that sizes
 * the measurement (and takes first-use costs out of it).
 */
static int measure_user(int (*op)(void *ctx), void *ctx, struct result *r)
{
	uint64_t ns[MAX_REPS], t;
	uint32_t reps, i;

	memset(r, 0, sizeof(*r));
	t = now_ns();
	if (op(ctx))
		return -1;
	t = now_ns() - t;
	reps = t ? budget_ns / t : MAX_REPS;
	reps = t > budget_ns ? 1 : reps < MIN_REPS ? MIN_REPS :
	       reps > MAX_REPS ? MAX_REPS : reps;
	for (i = 0; i < reps; i++) {
		t = now_ns();
		if (op(ctx))
			return -1;
		ns[i] = now_ns() - t;
	}
	summarize(ns, reps, r);
	return 0;
}

/* IOMMU page-table memory while one mapping through @api is held. */
static uint64_t iommu_bytes(int imp, uint32_t api)
{
	uint64_t before = vmstat("nr_iommu_pages"), during;
	uint32_t nr = 0;

	if (imp_map(imp, api, 0, NULL, &nr))
		die("IMP_MAP");
	during = vmstat("nr_iommu_pages");
	ioctl(imp, IMP_UNMAP);
	return during > before ? (during - before) * PAGE_SZ : 0;
}

static void report(const char *method, uint64_t size, const struct result *r)
{
	printf("row\t%s\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\n",
	       method, (unsigned long long)size, (unsigned long long)r->reps,
	       (unsigned long long)r->median, (unsigned long long)r->p25,
	       (unsigned long long)r->p75, (unsigned long long)r->entries,
	       (unsigned long long)r->bytes, (unsigned long long)r->iommu_bytes);
	fflush(stdout);
}

static void expect(const char *method, uint64_t size, uint64_t got,
		   uint64_t want, const char *what)
{
	if (checking && got != want)
		fail("%s at %llu MiB: %llu %s, want %llu", method,
		     (unsigned long long)(size >> 20), (unsigned long long)got,
		     what, (unsigned long long)want);
}

/*
 * Import @dmabuf for edu and time @b on it.  Map methods attach first and,
 * behind an IOMMU, also measure the page tables of one held mapping.
 */
static void run(const char *method, int dmabuf, uint64_t size,
		struct imp_bench b, struct result *r)
{
	int imp = open_importer(), ret;
	int map = b.op == IMP_BENCH_RANGES || b.op == IMP_BENCH_SGT;

	if (imp < 0 || (map && imp_attach(imp, dmabuf, IMP_DYNAMIC | IMP_P2P |
					  IMP_REVOCABLE |
					  (b.op == IMP_BENCH_SGT ? IMP_SGT : 0))))
		die("importing the dma-buf for edu");
	b.fd = dmabuf;
	memset(r, 0, sizeof(*r));
	ret = measure(imp, b, r);
	if (ret) {
		errno = -ret;
		die("%s at %llu bytes", method, (unsigned long long)size);
	}
	if (map && have_iommu)
		r->iommu_bytes = iommu_bytes(imp, b.op == IMP_BENCH_RANGES ?
					     IMP_API_RANGES : IMP_API_SGT);
	close(imp);
	report(method, size, r);
}

#define RANGES		((struct imp_bench){ .op = IMP_BENCH_RANGES })
#define SGT(seg)	((struct imp_bench){ .op = IMP_BENCH_SGT, .max_seg = (seg) })
#define UMEM(pgsz)	((struct imp_bench){ .op = IMP_BENCH_UMEM, \
					     .pgsz_bitmap = (pgsz) })
#define UMEM_SGT(pgsz)	((struct imp_bench){ .op = IMP_BENCH_UMEM_SGT, \
					     .max_seg = UINT32_MAX, \
					     .pgsz_bitmap = (pgsz) })
#define BITMAP_IRDMA	(PAGE_SZ | SZ_2M | SZ_1G)
#define BITMAP_BNXT_RE	0x7ffff000ull	/* BNXT_RE_PAGE_SIZE_SUPPORTED */
#define ATTACH		((struct imp_bench){ .op = IMP_BENCH_ATTACH })

/*
 * [4 KiB, size): the IOVA is size-aligned but the BAR address is not, so
 * the IOMMU needs a 4 KiB PTE for every page of it.
 */
static void misaligned(struct vdev *v, uint64_t size)
{
	struct vfio_region_dma_range slice = { PAGE_SZ, size - PAGE_SZ };
	int dmabuf = export_ranges(v->device, BAR, O_RDWR | O_CLOEXEC, 0, 1,
				   &slice, 1);
	struct result r;

	if (dmabuf < 0)
		die("VFIO_DEVICE_FEATURE_DMA_BUF of [4K, %llu)",
		    (unsigned long long)size);
	run("ranges-4k", dmabuf, size, RANGES, &r);
	expect("ranges-4k", size, r.entries, 1, "ranges");
	close(dmabuf);
}

/* LIST_NR slices of 64 KiB, 128 KiB apart: LIST_NR ranges per mapping. */
static void range_list(struct vdev *v)
{
	struct vfio_region_dma_range slices[LIST_NR];
	struct result r;
	int i, dmabuf;

	for (i = 0; i < LIST_NR; i++) {
		slices[i].offset = i * 2 * SZ_64K;
		slices[i].length = SZ_64K;
	}
	dmabuf = export_ranges(v->device, BAR, O_RDWR | O_CLOEXEC, 0, LIST_NR,
			       slices, LIST_NR);
	if (dmabuf < 0)
		die("VFIO_DEVICE_FEATURE_DMA_BUF of %d slices", LIST_NR);
	run("ranges-list", dmabuf, LIST_NR * SZ_64K, RANGES, &r);
	expect("ranges-list", LIST_NR * SZ_64K, r.entries, LIST_NR, "ranges");
	if (checking && r.bytes > 64 + 32 * r.entries)
		fail("ranges-list: %llu bytes for %llu ranges",
		     (unsigned long long)r.bytes, (unsigned long long)r.entries);
	close(dmabuf);
}

static void vfio_methods(struct vdev *v, const uint64_t *sizes, int n)
{
	uint64_t blocks;
	struct result r;
	int i;

	for (i = 0; i < n; i++) {
		struct vfio_region_dma_range slice = { 0, sizes[i] };
		uint64_t size = sizes[i];
		int dmabuf = export_ranges(v->device, BAR, O_RDWR | O_CLOEXEC,
					   0, 1, &slice, 1);

		if (dmabuf < 0)
			die("VFIO_DEVICE_FEATURE_DMA_BUF of %llu bytes",
			    (unsigned long long)size);
		run("ranges", dmabuf, size, RANGES, &r);
		expect("ranges", size, r.entries, 1, "ranges");
		if (checking && r.bytes > 64 + 32 * r.entries)
			fail("ranges: %llu bytes for %llu range(s)",
			     (unsigned long long)r.bytes,
			     (unsigned long long)r.entries);
		if (have_iommu)
			misaligned(v, size);
		run("sgt64k", dmabuf, size, SGT(SZ_64K), &r);
		expect("sgt64k", size, r.entries, size / SZ_64K, "entries");
		run("sgt4g", dmabuf, size, SGT(UINT32_MAX), &r);
		run("umem", dmabuf, size, UMEM(BITMAP_IRDMA), &r);
		/* 2M or 1G blocks; one block may cover a smaller MR */
		if (checking && r.entries > (size > SZ_2M ? size / SZ_2M : 1))
			fail("umem at %llu MiB: %llu blocks, not 2M or larger",
			     (unsigned long long)(size >> 20),
			     (unsigned long long)r.entries);
		/* The list changes how the blocks are found, not which. */
		blocks = r.entries;
		run("umem-sgt", dmabuf, size, UMEM_SGT(BITMAP_IRDMA), &r);
		expect("umem-sgt", size, r.entries, blocks, "blocks");
		run("umem-bnxt", dmabuf, size, UMEM(BITMAP_BNXT_RE), &r);
		if (checking && r.entries > blocks)
			fail("umem-bnxt at %llu MiB: %llu blocks, more than %llu",
			     (unsigned long long)(size >> 20),
			     (unsigned long long)r.entries,
			     (unsigned long long)blocks);
		run("umem4k", dmabuf, size, UMEM(PAGE_SZ), &r);
		expect("umem4k", size, r.entries, size / PAGE_SZ, "blocks");
		close(dmabuf);
	}
}

/* One IOMMU mapping of a BAR slice or memfd, for measure_user(). */
struct vmm_map {
	int fd;			/* container, or iommufd */
	uint32_t ioas;
	int file;		/* dma-buf or memfd for MAP_FILE */
	void *va;		/* the BAR's or memfd's mmap, else NULL */
	uint64_t size, iova;
	int sample;		/* count the IOMMU page tables, untimed */
	uint64_t iommu_pages;	/* IOMMU page-table pages while mapped */
};

static uint64_t iommu_pages_before(struct vmm_map *m)
{
	return m->sample ? vmstat("nr_iommu_pages") : 0;
}

static void iommu_pages_during(struct vmm_map *m, uint64_t before)
{
	uint64_t during;

	if (!m->sample)
		return;
	during = vmstat("nr_iommu_pages");
	m->iommu_pages = during > before ? during - before : 0;
}

/*
 * What a VMM on the legacy backend does for a BAR: VFIO_IOMMU_MAP_DMA of
 * its mmap, which looks the PFNs up page by page; then UNMAP_DMA.
 */
static int type1_map(void *ctx)
{
	struct vmm_map *m = ctx;
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map), .iova = m->iova, .size = m->size,
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
	};
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap), .iova = m->iova, .size = m->size,
	};
	uint64_t before = iommu_pages_before(m);

	map.vaddr = (uintptr_t)m->va;
	if (ioctl(m->fd, VFIO_IOMMU_MAP_DMA, &map))
		return -1;
	iommu_pages_during(m, before);
	return ioctl(m->fd, VFIO_IOMMU_UNMAP_DMA, &unmap) ||
	       unmap.size != m->size ? -1 : 0;
}

/* MAP_FILE of m->file, or IOAS_MAP of m->va, then UNMAP of every byte. */
static int iommufd_map(void *ctx)
{
	struct vmm_map *m = ctx;
	uint64_t before = iommu_pages_before(m), iova = 0;
	int ret;

	if (m->va)
		ret = map_user(m->fd, m->ioas, m->va, m->size, &iova);
	else
		ret = map_file(m->fd, m->ioas, m->file, 0, m->size, &iova, RW);
	if (ret)
		return -1;
	iommu_pages_during(m, before);
	m->iova = iova;
	return unmap(m->fd, m->ioas, iova, m->size) == (long long)m->size ?
	       0 : -1;
}

static void run_vmm(const char *method, int (*op)(void *ctx),
		    struct vmm_map *m, struct result *r)
{
	if (measure_user(op, m, r))
		die("%s at %llu bytes", method, (unsigned long long)m->size);
	m->sample = 1;
	if (op(m))
		die("%s at %llu bytes", method, (unsigned long long)m->size);
	m->sample = 0;
	r->iommu_bytes = m->iommu_pages * PAGE_SZ;
	report(method, m->size, r);
}

/*
 * The legacy backend: type1 MAP_DMA of the BAR's mmap at IOVA 64 GiB,
 * above the MSI window, every size (the 64 GiB target is judged on it).
 */
static void type1_method(struct vdev *v, const uint64_t *sizes, int n)
{
	struct vmm_map m = { .fd = v->container, .iova = 64 * SZ_1G };
	struct result r;
	int i;

	m.va = mmap(NULL, v->bar_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		    v->device, v->bar_off);
	if (m.va == MAP_FAILED)
		die("mmap of the BAR");
	for (i = 0; i < n; i++) {
		m.size = sizes[i];
		run_vmm("type1-bar", type1_map, &m, &r);
	}
	munmap(m.va, v->bar_size);
}

#define AREAS_IOVA	(16 * SZ_1G)	/* below any vIOMMU's 39-bit limit */

/*
 * @n one-page areas of @dmabuf at fixed IOVAs (an allocated IOVA would
 * cost O(n) each: iommufd's allocator walks the used space), by MAP_FILE
 * or by IOAS_COPY of the first; then decode off, on, and UNMAP of all.
 */
static void areas(struct cdev *dev, int fd, uint32_t ioas, int dmabuf,
		  const char *how, uint32_t n)
{
	struct iommu_ioas_copy cp = {
		.size = sizeof(cp), .dst_ioas_id = ioas, .src_ioas_id = ioas,
		.flags = RW | IOMMU_IOAS_MAP_FIXED_IOVA, .src_iova = AREAS_IOVA,
		.length = PAGE_SZ,
	};
	uint64_t revoke = UINT64_MAX, restore = UINT64_MAX, t, iova;
	int copy = !strcmp(how, "copy");
	uint32_t i;

	for (i = 0; i < n; i++) {
		iova = AREAS_IOVA + (uint64_t)i * PAGE_SZ;
		cp.dst_iova = iova;
		if (copy && i ? ioctl(fd, IOMMU_IOAS_COPY, &cp) :
		    map_file(fd, ioas, dmabuf, 0, PAGE_SZ, &iova,
			     RW | IOMMU_IOAS_MAP_FIXED_IOVA))
			die("area %u of %u by %s", i, n, how);
	}
	for (i = 0; i < 3; i++) {
		t = now_ns();
		if (set_command(dev, 0, PCI_COMMAND_MEMORY))
			die("decode off");
		t = now_ns() - t;
		revoke = t < revoke ? t : revoke;
		t = now_ns();
		if (set_command(dev, PCI_COMMAND_MEMORY, 0))
			die("decode on");
		t = now_ns() - t;
		restore = t < restore ? t : restore;
	}
	t = now_ns();
	if (unmap(fd, ioas, AREAS_IOVA, (uint64_t)n * PAGE_SZ) !=
	    (long long)n * PAGE_SZ)
		die("unmapping %u areas", n);
	t = now_ns() - t;
	printf("areas\t%s\t%u\t%llu\t%llu\t%llu\n", how, n,
	       (unsigned long long)revoke, (unsigned long long)restore,
	       (unsigned long long)t);
	fflush(stdout);
}

/* 1 to areas_max areas of a dma-buf of the BAR's first page, both ways */
static void areas_methods(struct cdev *dev, int fd, uint32_t ioas)
{
	struct vfio_region_dma_range page = { 0, PAGE_SZ };
	uint32_t n;
	int dmabuf;

	dmabuf = export_ranges(dev->fd, BAR, O_RDONLY | O_CLOEXEC, 0, 1, &page,
			       1);
	if (dmabuf < 0)
		die("VFIO_DEVICE_FEATURE_DMA_BUF of a page");
	for (n = 1; n <= areas_max; n *= 10) {
		areas(dev, fd, ioas, dmabuf, "mapfile", n);
		areas(dev, fd, ioas, dmabuf, "copy", n);
	}
	close(dmabuf);
}

/*
 * The iommufd backend, ivshmem bound to an iommufd and attached to an
 * IOAS: MAP_FILE of a dma-buf of each slice, then memfds, then many
 * small areas.
 */
static void iommufd_methods(const uint64_t *sizes, int n)
{
	struct vmm_map m = { 0 };
	struct result r;
	struct cdev dev;
	int i;

	m.fd = open_iommufd();
	if (m.fd < 0 || cdev_open(&dev, IVSHMEM_ID, m.fd) ||
	    ioas_alloc(m.fd, &m.ioas) || cdev_attach(&dev, m.ioas) ||
	    set_command(&dev, PCI_COMMAND_MEMORY, 0))
		die("ivshmem on an IOAS through its vfio cdev");
	for (i = 0; i < n; i++) {
		struct vfio_region_dma_range slice = { 0, sizes[i] };
		uint64_t align = sizes[i] < SZ_1G ? sizes[i] : SZ_1G;

		m.size = sizes[i];
		m.file = export_ranges(dev.fd, BAR, O_RDONLY | O_CLOEXEC, 0, 1,
				       &slice, 1);
		if (m.file < 0)
			die("VFIO_DEVICE_FEATURE_DMA_BUF of %llu bytes",
			    (unsigned long long)m.size);
		run_vmm("mapfile-bar", iommufd_map, &m, &r);
		/* large IOMMU pages need the IOVA aligned like the BAR */
		expect("mapfile-bar", m.size, m.iova % align, 0, "IOVA misalignment");
		close(m.file);
	}
	for (i = 0; i < n && sizes[i] <= MEMFD_MAX; i++) {
		m.size = sizes[i];
		m.file = memfd_create("guest-ram", MFD_CLOEXEC);
		if (m.file < 0 || fallocate(m.file, 0, 0, m.size))
			die("a memfd of %llu bytes", (unsigned long long)m.size);
		/* populated, so IOAS_MAP does not time page faults */
		m.va = mmap(NULL, m.size, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_POPULATE, m.file, 0);
		if (m.va == MAP_FAILED)
			die("mmap of the memfd");
		run_vmm("map-memfd", iommufd_map, &m, &r);
		munmap(m.va, m.size);
		m.va = NULL;
		run_vmm("mapfile-memfd", iommufd_map, &m, &r);
		close(m.file);
	}
	areas_methods(&dev, m.fd, m.ioas);
	cdev_close(&dev);
	close(m.fd);
}

static int bind_driver(const char *bdf, const char *driver)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", bdf);
	if (!access(path, F_OK) && write_file(path, bdf))
		return -1;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
	if (write_file(path, driver))
		return -1;
	return write_file("/sys/bus/pci/drivers_probe", bdf);
}

/*
 * The struct-page baseline, sizes in increasing order, each after pages
 * for it exist; a size runs only if the previous one, scaled by size,
 * says it fits in the pages budget.
 */
static void pages_method(const char *bdf, const uint64_t *sizes, int n)
{
	uint64_t prev_size = 0, prev_ns = 0, created_ns = 0, memmap_bytes = 0;
	struct result r;
	int ppe, i;

	if (system("modprobe p2p_page_exporter") ||
	    bind_driver(bdf, "p2p_page_exporter"))
		die("binding %s to p2p_page_exporter", bdf);
	ppe = open("/dev/p2p_page_exporter", O_RDWR);
	if (ppe < 0)
		die("opening /dev/p2p_page_exporter");
	for (i = 0; i < n; i++) {
		struct ppe_export e = { .size = sizes[i] };
		uint64_t memmap, start;

		if (prev_ns && (double)prev_ns * sizes[i] / prev_size >
			       pages_budget_ns) {
			printf("info\tpages-stopped\t%llu\n",
			       (unsigned long long)sizes[i]);
			break;
		}
		start = now_ns();
		memmap = vmstat("nr_memmap_pages");
		if (ioctl(ppe, PPE_EXPORT, &e))
			die("PPE_EXPORT of %llu bytes", (unsigned long long)e.size);
		memmap = (vmstat("nr_memmap_pages") - memmap) * PAGE_SZ;
		/* 64-byte struct pages for the part that had none */
		expect("pages", e.size, memmap,
		       (e.size - prev_size) / PAGE_SZ * 64, "memmap bytes");
		created_ns += e.create_ns;
		memmap_bytes += memmap;
		printf("pages-setup\t%llu\t%llu\t%llu\n",
		       (unsigned long long)e.size, (unsigned long long)created_ns,
		       (unsigned long long)memmap_bytes);
		run("pages", e.fd, e.size, SGT(0), &r);
		expect("pages", e.size, r.entries, e.size / PAGE_SZ, "entries");
		close(e.fd);
		prev_size = sizes[i];
		prev_ns = now_ns() - start;
	}
	for (i = 0; i < n; i++) {
		struct ppe_export e = { .size = sizes[i],
					.flags = PPE_STATIC_RANGES };

		if (ioctl(ppe, PPE_EXPORT, &e))
			die("PPE_EXPORT of static ranges of %llu bytes",
			    (unsigned long long)e.size);
		run("attach", e.fd, e.size, ATTACH, &r);
		expect("attach", e.size, r.entries, 1, "cached entries");
		close(e.fd);
	}
	close(ppe);
	if (bind_driver(bdf, ""))
		die("unbinding p2p_page_exporter");
}

static void info(void)
{
	char buf[256];
	unsigned long long cap;

	if (!read_file("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		       buf, sizeof(buf)))
		printf("info\tclocksource\t%s", buf);
	if (!read_file("/sys/class/iommu/dmar0/intel-iommu/cap", buf, sizeof(buf))) {
		have_iommu = 1;
		cap = strtoull(buf, NULL, 16);
		/* VT-d SLLPS: bit 34 is 2 MiB pages, bit 35 1 GiB pages */
		printf("info\tiommu-large-pages\t%s%s%s\n",
		       cap >> 34 & 1 ? "2M " : "", cap >> 35 & 1 ? "1G" : "",
		       cap >> 34 & 3 ? "" : "none");
	}
}

int main(int argc, char **argv)
{
	uint64_t sizes[16];
	struct vdev v;
	char *list = "2M,16M,128M,1G,8G,64G", *tok;
	int opt, n = 0;

	while ((opt = getopt(argc, argv, "s:b:p:a:c")) != -1) {
		switch (opt) {
		case 's':
			list = optarg;
			break;
		case 'b':
			budget_ns = strtoull(optarg, NULL, 10) * 1000000ull;
			break;
		case 'p':
			pages_budget_ns = strtoull(optarg, NULL, 10) * 1000000000ull;
			break;
		case 'a':
			areas_max = strtoul(optarg, NULL, 10);
			break;
		case 'c':
			checking = 1;
			break;
		default:
			fprintf(stderr, "usage: dmabuf-bench [-s 2M,1G,...] [-b ms per point] [-p pages budget s] [-a max areas] [-c]\n");
			return 2;
		}
	}
	if (vfio_open(&v))
		die("opening ivshmem through vfio-pci");
	for (tok = strtok(list, ","); tok && n < 16; tok = strtok(NULL, ",")) {
		char *unit;
		uint64_t s = strtoull(tok, &unit, 10);

		s <<= *unit == 'G' ? 30 : *unit == 'M' ? 20 : 0;
		if (s > v.bar_size) {
			printf("info\tskipped\t%s (BAR is %llu MiB)\n", tok,
			       (unsigned long long)(v.bar_size >> 20));
			continue;
		}
		sizes[n++] = s;
	}
	info();
	printf("info\tbar\t%llu\n", (unsigned long long)v.bar_size);
	vfio_methods(&v, sizes, n);
	range_list(&v);
	if (have_iommu)
		type1_method(&v, sizes, n);
	vfio_close(&v);
	if (have_iommu)
		iommufd_methods(sizes, n);
	pages_method(v.bdf, sizes, n);
	if (checking)
		printf("dmabuf-bench: %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
