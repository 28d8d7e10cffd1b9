// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * KUnit tests of how a dma-buf MR is revoked by its exporter and
 * deregistered.  Included at the end of verbs.c, whose MR paths are static.
 *
 * A mock exporter gives a one-page dma-buf.  irdma_handle_cqp_op() is
 * stubbed: each CQP command takes the next result from the case's script
 * and is recorded, and, as on the device, every command fails with -EBUSY
 * while a reset is under way.  One case also stubs the request allocator,
 * to have none.  The rest of the device is the few fields that
 * registration, revoke and dereg read.
 */
#include <kunit/device.h>
#include <kunit/static_stub.h>
#include <kunit/test.h>
#include <linux/dma-buf.h>
#include <linux/dma-buf-ranges.h>
#include <linux/dma-resv.h>
#include <linux/fdtable.h>

MODULE_IMPORT_NS(DMA_BUF);

#define TEST_MAX_MR	64

struct mr_test {
	struct irdma_device *iwdev;
	struct irdma_pd *iwpd;
	unsigned long allocated_mrs[BITS_TO_LONGS(TEST_MAX_MR)];
	struct dma_buf *dmabuf;
	struct ib_mr *mr;	/* registered, not yet deregistered */
	int *attached;		/* the exporter's count of attachments */
	const int *results;	/* what the CQP answers, command by command */
	unsigned int nr_results;
	u8 cmds[8];		/* the CQP commands issued */
	unsigned int nr_cmds;
	unsigned int resets;	/* resets requested */
};

static int fake_handle_cqp_op(struct irdma_pci_f *rf,
			      struct irdma_cqp_request *cqp_request)
{
	struct mr_test *t = kunit_get_current_test()->priv;
	unsigned int i = t->nr_cmds;

	if (rf->reset)
		return -EBUSY;
	KUNIT_ASSERT_LT(kunit_get_current_test(), i, ARRAY_SIZE(t->cmds));
	t->cmds[t->nr_cmds++] = cqp_request->info.cqp_cmd;
	return i < t->nr_results ? t->results[i] : 0;
}

/* No request free, and none to be had from memory. */
static struct irdma_cqp_request *
fake_alloc_no_request(struct irdma_cqp *cqp, bool wait)
{
	return NULL;
}

static void fake_request_reset(struct irdma_pci_f *rf)
{
	struct mr_test *t = kunit_get_current_test()->priv;

	t->resets++;
}

static struct dma_buf_ranges *mock_map(struct dma_buf_attachment *attach,
				       enum dma_data_direction dir)
{
	struct dma_buf_ranges *ranges = dma_buf_ranges_alloc(1, GFP_KERNEL);

	if (!ranges)
		return ERR_PTR(-ENOMEM);
	ranges->ranges[0] = (struct dma_buf_range){ 0x40000000, PAGE_SIZE };
	return ranges;
}

static void mock_unmap(struct dma_buf_attachment *attach,
		       struct dma_buf_ranges *ranges,
		       enum dma_data_direction dir)
{
	dma_buf_ranges_free(ranges);
}

static int mock_attach(struct dma_buf *dmabuf,
		       struct dma_buf_attachment *attach)
{
	(*(int *)dmabuf->priv)++;
	return 0;
}

static void mock_detach(struct dma_buf *dmabuf,
			struct dma_buf_attachment *attach)
{
	(*(int *)dmabuf->priv)--;
}

static int mock_pin(struct dma_buf_attachment *attach)
{
	return 0;
}

static void mock_unpin(struct dma_buf_attachment *attach)
{
}

static void mock_release(struct dma_buf *dmabuf)
{
	kfree(dmabuf->priv);
}

static const struct dma_buf_ops mock_ops = {
	.attach = mock_attach,
	.detach = mock_detach,
	.map_dma_ranges = mock_map,
	.unmap_dma_ranges = mock_unmap,
	.pin = mock_pin,
	.unpin = mock_unpin,
	.release = mock_release,
};

static void put_dmabuf(void *dmabuf)
{
	dma_buf_put(dmabuf);
}

static int mr_test_init(struct kunit *test)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct irdma_pci_f *rf;
	struct mr_test *t;

	t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t);
	t->iwdev = kunit_kzalloc(test, sizeof(*t->iwdev), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t->iwdev);
	rf = kunit_kzalloc(test, sizeof(*rf), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, rf);
	t->iwpd = kunit_kzalloc(test, sizeof(*t->iwpd), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t->iwpd);

	t->iwdev->rf = rf;
	t->iwdev->ibdev.dma_device = kunit_device_register(test, "irdma_test");
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, t->iwdev->ibdev.dma_device);
	rf->iwdev = t->iwdev;
	rf->max_mr = TEST_MAX_MR;
	rf->mr_stagmask = 0x003fffff;	/* what irdma computes for 64 MRs */
	rf->allocated_mrs = t->allocated_mrs;
	spin_lock_init(&rf->rsrc_lock);
	spin_lock_init(&rf->cqp.req_lock);
	INIT_LIST_HEAD(&rf->cqp.cqp_avail_reqs);
	init_waitqueue_head(&rf->cqp.remove_wq);
	rf->gen_ops.request_reset = fake_request_reset;
	rf->sc_dev.hw_attrs.max_mr_size = SZ_1G;
	rf->sc_dev.hw_attrs.page_size_cap = SZ_4K | SZ_2M | SZ_1G;
	t->iwpd->ibpd.device = &t->iwdev->ibdev;

	t->attached = kzalloc(sizeof(*t->attached), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t->attached);
	info.ops = &mock_ops;
	info.size = PAGE_SIZE;
	info.priv = t->attached;
	t->dmabuf = dma_buf_export(&info);
	if (IS_ERR(t->dmabuf))
		kfree(t->attached);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, t->dmabuf);
	KUNIT_ASSERT_EQ(test, kunit_add_action_or_reset(test, put_dmabuf,
							t->dmabuf), 0);

	test->priv = t;
	kunit_activate_static_stub(test, irdma_handle_cqp_op,
				   fake_handle_cqp_op);
	return 0;
}

/*
 * An MR that dereg could not free, as when a reset is under way (the reset
 * would free it with the device) or a case failed: free it here.
 */
static void mr_test_exit(struct kunit *test)
{
	struct mr_test *t = test->priv;
	struct irdma_mr *iwmr;

	if (!t || !t->mr)
		return;
	iwmr = to_iwmr(t->mr);
	if (iwmr->region)
		ib_umem_release(iwmr->region);
	irdma_free_stag(t->iwdev, iwmr->stag);
	irdma_free_iwmr(iwmr);
}

/*
 * Register the dma-buf through an fd, as uverbs does; the CQP answers.  The
 * fd lives for the call in the fd table KUnit's thread shares with the
 * kernel's other threads.
 */
static struct ib_mr *reg_mr(struct kunit *test, int access,
			    const int *results, unsigned int nr_results)
{
	struct mr_test *t = test->priv;
	struct ib_mr *mr;
	int fd;

	t->results = results;
	t->nr_results = nr_results;
	t->nr_cmds = 0;
	get_dma_buf(t->dmabuf);
	fd = dma_buf_fd(t->dmabuf, O_CLOEXEC);
	if (fd < 0)
		dma_buf_put(t->dmabuf);
	KUNIT_ASSERT_GE(test, fd, 0);
	mr = irdma_reg_user_mr_dmabuf(&t->iwpd->ibpd, 0, PAGE_SIZE, 0x10000,
				      fd, access, NULL);
	close_fd(fd);
	if (!IS_ERR(mr))
		t->mr = mr;
	return mr;
}

static void expect_cmds(struct kunit *test, const u8 *cmds, unsigned int nr)
{
	struct mr_test *t = test->priv;
	unsigned int i;

	KUNIT_ASSERT_EQ(test, t->nr_cmds, nr);
	for (i = 0; i < nr; i++)
		KUNIT_EXPECT_EQ_MSG(test, t->cmds[i], cmds[i], "command %u", i);
}

/* What the exporter's revoke does: move_notify under the reservation lock. */
static void exporter_revokes(struct kunit *test, const int *results,
			     unsigned int nr_results)
{
	struct mr_test *t = test->priv;

	t->results = results;
	t->nr_results = nr_results;
	t->nr_cmds = 0;
	dma_resv_lock(t->dmabuf->resv, NULL);
	dma_buf_move_notify(t->dmabuf);
	dma_resv_unlock(t->dmabuf->resv);
}

static int dereg(struct kunit *test, struct ib_mr *mr, const int *results,
		 unsigned int nr_results)
{
	struct mr_test *t = test->priv;

	int ret;

	t->results = results;
	t->nr_results = nr_results;
	t->nr_cmds = 0;
	ret = irdma_dereg_mr(mr, NULL);
	if (!ret)
		t->mr = NULL;
	return ret;
}

static const u8 reg_cmds[] = { IRDMA_OP_MR_REG_NON_SHARED };
static const u8 dealloc_cmds[] = { IRDMA_OP_DEALLOC_STAG };
static const u8 dealloc_twice_cmds[] = {
	IRDMA_OP_DEALLOC_STAG, IRDMA_OP_DEALLOC_STAG,
};

/*
 * The exporter's revoke deregisters the MR in hardware and keeps its STag,
 * so that no other MR gets the key while userspace holds it; dereg then
 * has no command left to issue and frees the STag.
 */
static void test_revoke_deregisters_and_keeps_stag(struct kunit *test)
{
	struct mr_test *t = test->priv;
	struct ib_mr *mr;

	mr = reg_mr(test, IB_ACCESS_LOCAL_WRITE, NULL, 0);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, mr);
	expect_cmds(test, reg_cmds, ARRAY_SIZE(reg_cmds));
	KUNIT_EXPECT_EQ(test, *t->attached, 1);

	exporter_revokes(test, NULL, 0);
	expect_cmds(test, dealloc_cmds, ARRAY_SIZE(dealloc_cmds));
	KUNIT_EXPECT_FALSE(test, to_iwmr(mr)->is_hwreg);
	KUNIT_EXPECT_EQ(test, bitmap_weight(t->allocated_mrs, TEST_MAX_MR), 1);
	KUNIT_EXPECT_EQ(test, t->resets, 0);

	KUNIT_EXPECT_EQ(test, dereg(test, mr, NULL, 0), 0);
	expect_cmds(test, NULL, 0);
	KUNIT_EXPECT_EQ(test, bitmap_weight(t->allocated_mrs, TEST_MAX_MR), 0);
	KUNIT_EXPECT_EQ(test, *t->attached, 0);
}

/*
 * A deregistration that finds no CQP request (-ENOMEM) is done by the
 * umem's release, whose revoke uses the request reserved at registration:
 * dereg succeeds, with one command and no reset, and lets the dma-buf go.
 */
static void test_dereg_without_request_succeeds_without_reset(struct kunit *test)
{
	struct mr_test *t = test->priv;
	struct ib_mr *mr;

	mr = reg_mr(test, IB_ACCESS_LOCAL_WRITE, NULL, 0);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, mr);

	kunit_activate_static_stub(test, irdma_alloc_and_get_cqp_request,
				   fake_alloc_no_request);
	KUNIT_EXPECT_EQ(test, dereg(test, mr, NULL, 0), 0);
	kunit_deactivate_static_stub(test, irdma_alloc_and_get_cqp_request);
	expect_cmds(test, dealloc_cmds, ARRAY_SIZE(dealloc_cmds));
	KUNIT_EXPECT_EQ(test, t->resets, 0);
	KUNIT_EXPECT_EQ(test, *t->attached, 0);
	KUNIT_EXPECT_EQ(test, bitmap_weight(t->allocated_mrs, TEST_MAX_MR), 0);
}

/*
 * A deregistration the hardware fails twice (dereg's, then the revoke's
 * with the reserved request) leaves an MR that may still reach the memory,
 * which goes back to its exporter: a reset is requested, once, and the
 * error goes back to the user.  Until the reset has run, every command
 * fails, dereg's included, and none asks for another.
 */
static void test_dereg_hw_failure_requests_reset(struct kunit *test)
{
	static const int hw_error[] = { -EIO, -EIO };
	struct mr_test *t = test->priv;
	struct ib_mr *mr;

	mr = reg_mr(test, IB_ACCESS_LOCAL_WRITE, NULL, 0);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, mr);

	KUNIT_EXPECT_EQ(test, dereg(test, mr, hw_error, ARRAY_SIZE(hw_error)),
			-EIO);
	expect_cmds(test, dealloc_twice_cmds, ARRAY_SIZE(dealloc_twice_cmds));
	KUNIT_EXPECT_EQ(test, t->resets, 1);
	KUNIT_EXPECT_EQ(test, *t->attached, 0);

	KUNIT_EXPECT_EQ(test, dereg(test, mr, NULL, 0), -EBUSY);
	expect_cmds(test, NULL, 0);
	KUNIT_EXPECT_EQ(test, t->resets, 1);
}

/*
 * If the hardware fails the revoke's deregistration, the MR may still reach
 * memory its owner takes back: a reset of the function is requested, once.
 * Until it has run every command fails, dereg's included, which lets the
 * dma-buf go anyway and asks for no other reset.
 */
static void test_failed_revoke_requests_reset(struct kunit *test)
{
	static const int hw_error[] = { -EIO };
	struct mr_test *t = test->priv;
	struct ib_mr *mr;

	mr = reg_mr(test, IB_ACCESS_LOCAL_WRITE, NULL, 0);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, mr);

	exporter_revokes(test, hw_error, ARRAY_SIZE(hw_error));
	expect_cmds(test, dealloc_cmds, ARRAY_SIZE(dealloc_cmds));
	KUNIT_EXPECT_EQ(test, t->resets, 1);
	KUNIT_EXPECT_TRUE(test, t->iwdev->rf->reset);

	KUNIT_EXPECT_EQ(test, dereg(test, mr, NULL, 0), -EBUSY);
	expect_cmds(test, NULL, 0);
	KUNIT_EXPECT_EQ(test, t->resets, 1);
	KUNIT_EXPECT_EQ(test, *t->attached, 0);
}

/* A revoke during a reset is done by that reset: no other is requested. */
static void test_revoke_during_reset_requests_none(struct kunit *test)
{
	struct mr_test *t = test->priv;
	struct ib_mr *mr;

	mr = reg_mr(test, IB_ACCESS_LOCAL_WRITE, NULL, 0);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, mr);

	t->iwdev->rf->reset = true;
	exporter_revokes(test, NULL, 0);
	expect_cmds(test, NULL, 0);
	KUNIT_EXPECT_EQ(test, t->resets, 0);
	KUNIT_EXPECT_EQ(test, dereg(test, mr, NULL, 0), -EBUSY);
	KUNIT_EXPECT_EQ(test, t->resets, 0);
	KUNIT_EXPECT_EQ(test, *t->attached, 0);
}

/* No window may be bound to a dma-buf MR: refused before anything is done. */
static void test_mw_bind_refused(struct kunit *test)
{
	struct mr_test *t = test->priv;

	KUNIT_EXPECT_EQ(test, PTR_ERR(reg_mr(test, IB_ACCESS_LOCAL_WRITE |
					     IB_ACCESS_MW_BIND, NULL, 0)),
			-EOPNOTSUPP);
	expect_cmds(test, NULL, 0);
	KUNIT_EXPECT_EQ(test, *t->attached, 0);
	KUNIT_EXPECT_EQ(test, bitmap_weight(t->allocated_mrs, TEST_MAX_MR), 0);
}

static struct kunit_case irdma_dmabuf_mr_cases[] = {
	KUNIT_CASE(test_revoke_deregisters_and_keeps_stag),
	KUNIT_CASE(test_dereg_without_request_succeeds_without_reset),
	KUNIT_CASE(test_dereg_hw_failure_requests_reset),
	KUNIT_CASE(test_failed_revoke_requests_reset),
	KUNIT_CASE(test_revoke_during_reset_requests_none),
	KUNIT_CASE(test_mw_bind_refused),
	{}
};

static struct kunit_suite irdma_dmabuf_mr_suite = {
	.name = "irdma-dmabuf-mr",
	.init = mr_test_init,
	.exit = mr_test_exit,
	.test_cases = irdma_dmabuf_mr_cases,
};

kunit_test_suite(irdma_dmabuf_mr_suite);
