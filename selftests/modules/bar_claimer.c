// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only: claim the first page of a BAR for another owner, as a
 * firmware framebuffer or a platform driver claims memory that lies in a
 * BAR, so that vfio cannot request the BAR's region.
 *
 *   modprobe bar_claimer dev=0000:01:00.0 bar=2
 *
 * The claim lasts until the module is removed.
 */
#include <linux/ioport.h>
#include <linux/module.h>
#include <linux/pci.h>

static char *dev;
module_param(dev, charp, 0444);
MODULE_PARM_DESC(dev, "PCI device, as domain:bus:slot.function");

static int bar;
module_param(bar, int, 0444);
MODULE_PARM_DESC(bar, "BAR whose first page to claim");

static struct resource *claim;

static int __init bar_claimer_init(void)
{
	unsigned int domain, bus, slot, fn;
	struct pci_dev *pdev;
	resource_size_t start;

	if (!dev || sscanf(dev, "%x:%x:%x.%x", &domain, &bus, &slot, &fn) != 4 ||
	    bar < 0 || bar > PCI_STD_RESOURCE_END)
		return -EINVAL;
	pdev = pci_get_domain_bus_and_slot(domain, bus, PCI_DEVFN(slot, fn));
	if (!pdev)
		return -ENODEV;
	start = pci_resource_start(pdev, bar);
	if (pci_resource_len(pdev, bar) >= PAGE_SIZE &&
	    (pci_resource_flags(pdev, bar) & IORESOURCE_MEM))
		claim = request_mem_region(start, PAGE_SIZE, "bar_claimer");
	pci_dev_put(pdev);
	return claim ? 0 : -EBUSY;
}

static void __exit bar_claimer_exit(void)
{
	release_mem_region(claim->start, resource_size(claim));
}

module_init(bar_claimer_init);
module_exit(bar_claimer_exit);
MODULE_DESCRIPTION("Test-only claim of a page of a PCI BAR");
MODULE_LICENSE("GPL");
