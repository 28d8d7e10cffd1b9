// SPDX-License-Identifier: GPL-2.0
/*
 * Proves that the harness notices kernel reports: loading this module with
 * action=warn triggers a WARN, action=leak loses a small allocation for
 * kmemleak to find.  Loading never succeeds, so nothing stays behind.
 */
#include <linux/module.h>
#include <linux/slab.h>

static char *action = "none";
module_param(action, charp, 0);
MODULE_PARM_DESC(action, "warn or leak");

static void * volatile leaked;

static int __init harness_selftest_init(void)
{
	if (!strcmp(action, "warn")) {
		WARN(1, "harness_selftest: deliberate warning\n");
	} else if (!strcmp(action, "leak")) {
		int i;

		/*
		 * Forget each reference at once; with several objects, a stale
		 * copy on some stack cannot hide them all from kmemleak.
		 */
		for (i = 0; i < 16; i++)
			leaked = kmalloc(64, GFP_KERNEL);
		leaked = NULL;
	}
	return -EAGAIN;
}
module_init(harness_selftest_init);

MODULE_DESCRIPTION("Self-test of the test harness's kernel log checks");
MODULE_LICENSE("GPL");
