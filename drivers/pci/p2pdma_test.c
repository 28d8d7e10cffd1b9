// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit test of which devices reach a PCI device's BARs through an IOMMU
 * (pci_p2pdma_host_bridge_forwards()), on made-up host bridges.  Included
 * by p2pdma.c: the rules are its static functions.
 *
 * A host bridge here is a root bus whose first device, at devfn 0, has the
 * IDs that the whitelist names.  The rule depends on the CPU the test runs
 * on (an AMD Zen routes P2P between all host bridges), so each case runs
 * where its answer is the rule's: the host bridge cases on other CPUs, the
 * CPU case on those.
 */
#include <kunit/device.h>
#include <kunit/test.h>

#define Q35_HOST_BRIDGE		0x29c0	/* not listed */
#define SKYLAKE_E_ROOT_A	0x2030	/* listed, to any listed bridge */
#define SKYLAKE_E_ROOT_B	0x2031
#define XEON_E5_ROOT_A		0x3c00	/* listed, within the bridge only */
#define XEON_E5_ROOT_B		0x3c01

struct fake_host {
	struct pci_host_bridge *bridge;
	struct pci_bus *bus;
};

/*
 * A host bridge whose root bus starts with an Intel device @device at
 * @devfn, a root port if @root_port
 */
static struct fake_host fake_host_at(struct kunit *test, unsigned short device,
				     unsigned int devfn, bool root_port)
{
	struct fake_host h;
	struct pci_dev *root;

	h.bridge = kunit_kzalloc(test, sizeof(*h.bridge), GFP_KERNEL);
	h.bus = kunit_kzalloc(test, sizeof(*h.bus), GFP_KERNEL);
	root = kunit_kzalloc(test, sizeof(*root), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, h.bridge);
	KUNIT_ASSERT_NOT_NULL(test, h.bus);
	KUNIT_ASSERT_NOT_NULL(test, root);
	INIT_LIST_HEAD(&h.bus->devices);
	h.bus->bridge = &h.bridge->dev;
	h.bridge->bus = h.bus;
	root->vendor = PCI_VENDOR_ID_INTEL;
	root->device = device;
	root->devfn = devfn;
	if (root_port)
		root->pcie_flags_reg = PCI_EXP_TYPE_ROOT_PORT << 4;
	root->bus = h.bus;
	list_add(&root->bus_list, &h.bus->devices);
	return h;
}

static struct fake_host fake_host(struct kunit *test, unsigned short device)
{
	return fake_host_at(test, device, PCI_DEVFN(0, 0), false);
}

/* A bus below @parent, as behind a switch */
static struct pci_bus *fake_child_bus(struct kunit *test,
				      struct pci_bus *parent)
{
	struct pci_bus *bus = kunit_kzalloc(test, sizeof(*bus), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, bus);
	INIT_LIST_HEAD(&bus->devices);
	bus->parent = parent;
	return bus;
}

static struct pci_dev *fake_endpoint(struct kunit *test, struct pci_bus *bus)
{
	struct pci_dev *pdev = kunit_kzalloc(test, sizeof(*pdev), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, pdev);
	pdev->bus = bus;
	return pdev;
}

static bool reaches(struct kunit *test, struct pci_bus *provider_bus,
		    struct pci_bus *client_bus)
{
	return host_bridges_forward(fake_endpoint(test, provider_bus),
				    fake_endpoint(test, client_bus), false);
}

/*
 * Both ends' host bridges decide, as for P2P without an IOMMU through a
 * host bridge: a listed provider is not reached from an unlisted host
 * bridge, nor from a listed one when either wants the same bridge, and
 * devices below one switch of an unlisted host bridge do not reach each
 * other either, since the IOMMU translates at the root complex.  A bridge
 * is known by its root bus's first device if that is 00.0 or a root port.
 */
static void test_iommu_reach_needs_both_host_bridges(struct kunit *test)
{
	struct fake_host q35 = fake_host(test, Q35_HOST_BRIDGE);
	struct fake_host sky_a = fake_host(test, SKYLAKE_E_ROOT_A);
	struct fake_host sky_b = fake_host(test, SKYLAKE_E_ROOT_B);
	struct fake_host e5_a = fake_host(test, XEON_E5_ROOT_A);
	struct fake_host e5_b = fake_host(test, XEON_E5_ROOT_B);
	struct fake_host sky_rp = fake_host_at(test, SKYLAKE_E_ROOT_B,
					       PCI_DEVFN(1, 0), true);
	struct fake_host sky_uncore = fake_host_at(test, SKYLAKE_E_ROOT_B,
						   PCI_DEVFN(8, 0), false);
	struct pci_bus *below_switch = fake_child_bus(test, q35.bus);

	if (cpu_supports_p2pdma())
		kunit_skip(test, "this CPU routes P2P between all host bridges");

	KUNIT_EXPECT_FALSE(test, reaches(test, sky_a.bus, q35.bus));
	KUNIT_EXPECT_FALSE(test, reaches(test, q35.bus, sky_a.bus));
	KUNIT_EXPECT_TRUE(test, reaches(test, sky_a.bus, sky_b.bus));
	KUNIT_EXPECT_TRUE(test, reaches(test, sky_a.bus, sky_a.bus));
	KUNIT_EXPECT_TRUE(test, reaches(test, e5_a.bus, e5_a.bus));
	KUNIT_EXPECT_FALSE(test, reaches(test, e5_a.bus, e5_b.bus));
	KUNIT_EXPECT_FALSE(test, reaches(test, sky_a.bus, e5_a.bus));
	KUNIT_EXPECT_TRUE(test, reaches(test, sky_a.bus, sky_rp.bus));
	KUNIT_EXPECT_FALSE(test, reaches(test, sky_a.bus, sky_uncore.bus));
	KUNIT_EXPECT_FALSE(test, reaches(test, below_switch, below_switch));
	KUNIT_EXPECT_FALSE(test, reaches(test, q35.bus, below_switch));
}

/* A CPU that routes P2P between all host bridges reaches from anywhere. */
static void test_iommu_reach_everywhere_when_cpu_routes_p2p(struct kunit *test)
{
	struct fake_host q35 = fake_host(test, Q35_HOST_BRIDGE);
	struct fake_host sky_a = fake_host(test, SKYLAKE_E_ROOT_A);
	struct fake_host e5_a = fake_host(test, XEON_E5_ROOT_A);
	struct fake_host e5_b = fake_host(test, XEON_E5_ROOT_B);
	struct pci_bus *below_switch = fake_child_bus(test, q35.bus);

	if (!cpu_supports_p2pdma())
		kunit_skip(test, "this CPU does not route P2P between all host bridges");

	KUNIT_EXPECT_TRUE(test, reaches(test, sky_a.bus, q35.bus));
	KUNIT_EXPECT_TRUE(test, reaches(test, q35.bus, sky_a.bus));
	KUNIT_EXPECT_TRUE(test, reaches(test, e5_a.bus, e5_b.bus));
	KUNIT_EXPECT_TRUE(test, reaches(test, below_switch, below_switch));
}

/*
 * A client with no PCI device among its parents is never reached.  (The
 * exported function's walk to a PCI client takes references on real
 * devices, which this test does not make; the cases above ask its rule.)
 */
static void test_non_pci_client_never_reaches(struct kunit *test)
{
	struct fake_host sky_a = fake_host(test, SKYLAKE_E_ROOT_A);
	struct device *dev = kunit_device_register(test, "p2pdma-test");

	KUNIT_ASSERT_FALSE(test, IS_ERR(dev));
	KUNIT_EXPECT_FALSE(test,
			   pci_p2pdma_host_bridge_forwards(fake_endpoint(test, sky_a.bus),
							   dev));
}

static struct kunit_case p2pdma_test_cases[] = {
	KUNIT_CASE(test_iommu_reach_needs_both_host_bridges),
	KUNIT_CASE(test_iommu_reach_everywhere_when_cpu_routes_p2p),
	KUNIT_CASE(test_non_pci_client_never_reaches),
	{}
};

static struct kunit_suite p2pdma_test_suite = {
	.name = "pci-p2pdma-host-bridge",
	.test_cases = p2pdma_test_cases,
};

kunit_test_suite(p2pdma_test_suite);
