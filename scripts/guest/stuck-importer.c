// SPDX-License-Identifier: GPL-2.0
/*
 * make check: an importer that never gives its mapping back keeps the
 * device.  Export ivshmem's BAR 2, import it for edu with the test
 * importer told to hold its mapping until IMP_UNMAP, close the device in
 * a thread and check the close is still waiting past 5 s, when the kernel
 * first names the importer in a warning; then let go and check the close
 * completes.  Exits 0 when both hold;
 * scripts/check also looks for the importer's name in the kernel log.
 */
#include <pthread.h>
#include <sys/mman.h>

#include "vfio_util.h"

#define FIRST_REPORT_MS	5000

static struct vdev v;
static int closed;

static void *close_thread(void *arg)
{
	vfio_close(&v);
	__atomic_store_n(&closed, 1, __ATOMIC_RELEASE);
	return NULL;
}

int main(void)
{
	struct vfio_region_dma_range r = { 0, SZ_64K };
	uint32_t nr = 0;
	int fd, imp, ok = 1;
	pthread_t t;

	if (vfio_open(&v))
		return printf("cannot open ivshmem\n"), 2;
	fd = export_ranges(v.device, BAR, O_RDWR, 0, 1, &r, 1);
	imp = open_importer();
	if (fd < 0 || imp < 0 ||
	    imp_attach(imp, fd, IMP_DYNAMIC | IMP_P2P | IMP_REVOCABLE) ||
	    imp_slow(imp, IMP_SLOW_UNMAP, 0) ||
	    imp_map(imp, IMP_API_RANGES, 0, NULL, &nr))
		return printf("cannot import: %s\n", strerror(errno)), 2;

	pthread_create(&t, NULL, close_thread, NULL);
	usleep((FIRST_REPORT_MS + 1500) * 1000);
	if (__atomic_load_n(&closed, __ATOMIC_ACQUIRE)) {
		printf("FAIL: close returned while the importer held the BAR\n");
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
	pthread_join(t, NULL);
	printf("%s: close waited for the importer past %d ms\n",
	       ok ? "PASS" : "FAIL", FIRST_REPORT_MS);
	close(imp);
	close(fd);
	return ok ? 0 : 1;
}
