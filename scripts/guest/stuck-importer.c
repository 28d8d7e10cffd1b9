// SPDX-License-Identifier: GPL-2.0
/*
 * make check: an importer that never gives its mapping back keeps the
 * device, not the closer.  Export ivshmem's BAR 2, import it for edu with
 * the test importer told to hold its mapping until IMP_UNMAP, close the
 * device and check the close returns at once, and that the device cannot
 * be opened again (EBUSY) past 5 s, when the kernel first names the
 * importer in a warning; then let go and check the device opens again.
 * Exits 0 when all hold; scripts/check also looks for the importer's name
 * in the kernel log.
 */
#include <sys/mman.h>

#include "vfio_util.h"

#define FIRST_REPORT_MS	5000

int main(void)
{
	struct vfio_region_dma_range r = { 0, SZ_64K };
	struct vdev v;
	char bdf[32];
	double t0, ms;
	uint32_t nr = 0;
	int fd, imp, err, ok = 1;

	if (vfio_open(&v))
		return printf("cannot open ivshmem\n"), 2;
	snprintf(bdf, sizeof(bdf), "%s", v.bdf);
	fd = export_ranges(v.device, BAR, O_RDWR, 0, 1, &r, 1);
	imp = open_importer();
	if (fd < 0 || imp < 0 ||
	    imp_attach(imp, fd, IMP_DYNAMIC | IMP_P2P | IMP_REVOCABLE) ||
	    imp_slow(imp, IMP_SLOW_UNMAP, 0) ||
	    imp_map(imp, IMP_API_RANGES, 0, NULL, &nr))
		return printf("cannot import: %s\n", strerror(errno)), 2;

	t0 = now_ms();
	vfio_close(&v);
	ms = now_ms() - t0;
	if (ms > 1000) {
		printf("FAIL: close took %.0f ms with the importer holding the BAR\n", ms);
		ok = 0;
	}
	usleep((FIRST_REPORT_MS + 1500) * 1000);
	err = vfio_open_when_idle(&v, bdf, BAR, 0);
	if (err != EBUSY) {
		printf("FAIL: reopen while the importer held the BAR: %s\n",
		       err ? strerror(err) : "opened");
		ok = 0;
	}
	if (!imp_status(imp).mapped) {
		printf("FAIL: the importer lost its mapping\n");
		ok = 0;
	}
	if (ioctl(imp, IMP_UNMAP)) {
		printf("FAIL: IMP_UNMAP: %s\n", strerror(errno));
		ok = 0;
	}
	err = vfio_open_when_idle(&v, bdf, BAR, 3000);
	if (err) {
		printf("FAIL: reopen after the importer let go: %s\n", strerror(err));
		ok = 0;
	}
	printf("%s: the closed device stayed busy for the importer past %d ms\n",
	       ok ? "PASS" : "FAIL", FIRST_REPORT_MS);
	vfio_close(&v);
	close(imp);
	close(fd);
	return ok ? 0 : 1;
}
