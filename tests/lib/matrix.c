/* The rows of the semantics matrix: the test file, the test's side of the control
 * commands, and the client process with its checks (contracts in matrix.h). */
#include "matrix.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct mnt mx_mnt;
char mx_path[PATH_MAX];
char mx_rel[64];
char mx_orig[MX_MAPMAX];
struct ctl_result mx_res;

/* ---- the test's side ---- */

static void setup(void)
{
	fx_mount_or_fail(&mx_mnt, "mem:64M", NULL);
}

static void teardown(void)
{
	fx_teardown(&mx_mnt);
}

static void make_test_file(void)
{
	int rc;

	fx_enter_workdir();
	snprintf(mx_rel, sizeof(mx_rel), "%s", fx_work_rel("f"));
	snprintf(mx_path, sizeof(mx_path), "%s", fx_work_path("f"));
	rc = fx_write_file(mx_path, mx_orig, MX_FSIZE);
	ck_assert_msg(rc == 0, "write %s: %s", mx_path, strerror(-rc));
}

long long mx_val(const char *key)
{
	return fx_ctl_num(&mx_res, key);
}

bool mx_record_has(const char *key, const char *record)
{
	for (size_t i = 0; i < mx_res.nkv; i++) {
		if (!strcmp(mx_res.kv[i].key, key) && !strcmp(mx_res.kv[i].value, record))
			return true;
	}
	return false;
}

long long mx_rule_id(void)
{
	long long id = mx_val("id");

	ck_assert_msg(id >= 1, "no rule id in the reply: %s", mx_res.text);
	return id;
}

bool mx_rule_listed(long long id)
{
	char key[32];
	const char *v;

	snprintf(key, sizeof(key), "rule%lld", id);
	MX_CTL_OK("rules");
	v = ctl_result_get(&mx_res, key);
	return v && strstr(v, mx_rel);
}

void mx_last_step(struct fx_peer *p)
{
	fx_peer_step(p);
	fx_peer_finish(p);
}

void mx_clear_between_steps(struct fx_peer *p)
{
	fx_peer_step(p);
	MX_CTL_OK("clear");
	mx_last_step(p);
}

void mx_inval_last_step(struct fx_peer *p)
{
	MX_CTL_OK("inval", mx_rel);
	mx_last_step(p);
}

/* ---- the client ---- */

char *mx_image(size_t off, const char *bytes, size_t n)
{
	static char img[MX_MAPMAX];

	memcpy(img, mx_orig, sizeof(img));
	if (bytes)
		memcpy(img + off, bytes, n);
	else
		memset(img + off, 0, n);
	return img;
}

int mx_expect_pread(const char *what, int fd, const char *want, size_t size)
{
	char c;
	ssize_t n;

	FX_TRY(fx_expect_pread(what, fd, want, 0, size));
	n = pread(fd, &c, 1, (off_t)size);
	if (n != 0)
		return FX_FAIL("%s: pread at %zu, the expected end of file: %zd", what, size, n);
	return 0;
}

int mx_expect_pread_errno(int fd, size_t off, int err)
{
	static char buf[MX_PG] __attribute__((aligned(MX_PG))); /* O_DIRECT too */

	return fx_expect_err(pread(fd, buf, MX_PG, (off_t)off), err, "pread at %zu", off);
}

int mx_new_mapping_reads(const char *want)
{
	volatile char *sh, *pv;
	int fd = open(mx_path, O_RDONLY);

	if (fd < 0)
		return FX_FAIL("new open: %s", strerror(errno));
	sh = mmap(NULL, MX_FSIZE, PROT_READ, MAP_SHARED, fd, 0);
	pv = mmap(NULL, MX_FSIZE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (sh == MAP_FAILED || pv == MAP_FAILED)
		return FX_FAIL("mmap: %s", strerror(errno));
	FX_TRY(fx_expect_bytes("new shared mapping", sh, 0, want, MX_FSIZE));
	FX_TRY(fx_expect_bytes("new private mapping", pv, 0, want, MX_FSIZE));
	FX_TRY(mx_expect_pread("new descriptor", fd, want, MX_FSIZE));
	munmap((void *)sh, MX_FSIZE);
	munmap((void *)pv, MX_FSIZE);
	close(fd);
	return 0;
}

unsigned mx_range_mask(const struct mx_row *row)
{
	unsigned mask = 0;

	for (size_t p = 0; p < MX_NPG; p++) {
		if ((p + 1) * MX_PG > row->off && p * MX_PG < row->off + row->len)
			mask |= 1u << p;
	}
	return mask;
}

int mx_expect_cow_kept(struct mx_client *c)
{
	size_t off = (size_t)c->row->cow * MX_PG;
	char img[MX_PG];

	memcpy(img, mx_orig + off, MX_PG);
	img[0] = 'z';
	return fx_expect_bytes("COWed private page", c->pv + off, 0, img, MX_PG);
}

int mx_expect_view(struct mx_client *c, const char *want, size_t size)
{
	size_t end = (size + MX_PG - 1) / MX_PG * MX_PG;

	FX_TRY(fx_expect_bytes("shared mapping", c->sh, 0, want, end));
	for (size_t p = 0; p < end / MX_PG; p++) {
		if ((int)p == c->row->cow)
			FX_TRY(mx_expect_cow_kept(c));
		else
			FX_TRY(fx_expect_bytes("clean private page", c->pv, p * MX_PG, want,
					       MX_PG));
	}
	return mx_expect_pread("old descriptor", c->fd, want, size);
}

int mx_healthy_seen(struct mx_client *c)
{
	return mx_expect_view(c, mx_orig, MX_FSIZE);
}

static int check_mtime(const char *what, const struct stat *st, const struct stat *before,
		       enum mx_mtime mt)
{
	long long d = (long long)(st->st_mtim.tv_sec - before->st_mtim.tv_sec) * 1000000000LL +
		      (st->st_mtim.tv_nsec - before->st_mtim.tv_nsec);

	if ((mt == MX_MT_SAME && d != 0) || (mt == MX_MT_NEWER && d <= 0))
		return FX_FAIL("%s: mtime moved by %lld ns, expected %s", what, d,
			       mt == MX_MT_SAME ? "no change" : "a newer one");
	return 0;
}

int mx_expect_stat(struct mx_client *c, off_t size, enum mx_mtime mt)
{
	struct stat st[3];
	const char *what[3] = { "stat", "fstat of the old descriptor", "fstat after a new open" };
	int fd = open(mx_path, O_RDONLY);

	if (fd < 0)
		return FX_FAIL("new open: %s", strerror(errno));
	if (stat(mx_path, &st[0]) < 0 || fstat(c->fd, &st[1]) < 0 || fstat(fd, &st[2]) < 0)
		return FX_FAIL("stat: %s", strerror(errno));
	close(fd);
	for (int i = 0; i < 3; i++) {
		if (st[i].st_size != size)
			return FX_FAIL("%s: size %lld, expected %lld", what[i],
				       (long long)st[i].st_size, (long long)size);
		FX_TRY(check_mtime(what[i], &st[i], &c->before, mt));
	}
	return 0;
}

int mx_expect_cached(struct mx_client *c, unsigned mask)
{
	unsigned char vec[MX_NPG];

	if (mincore((void *)c->sh, MX_FSIZE, vec) < 0)
		return FX_FAIL("mincore: %s", strerror(errno));
	for (int i = 0; i < MX_NPG; i++) {
		if ((vec[i] & 1) != ((mask >> i) & 1))
			return FX_FAIL("page %d is %s the page cache", i,
				       vec[i] & 1 ? "still in" : "not in");
	}
	return 0;
}

/* Before the event: map a page more than the file, read everything (so every page is
 * cached), COW one page. */
static int client_prepare(struct mx_client *c)
{
	c->fd = open(mx_path, O_RDWR);
	c->dfd = open(mx_path, O_RDONLY | O_DIRECT);
	if (c->fd < 0 || c->dfd < 0)
		return FX_FAIL("open %s: %s", mx_path, strerror(errno));
	c->sh = mmap(NULL, MX_MAPMAX, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	c->pv = mmap(NULL, MX_MAPMAX, PROT_READ | PROT_WRITE, MAP_PRIVATE, c->fd, 0);
	if (c->sh == MAP_FAILED || c->pv == MAP_FAILED)
		return FX_FAIL("mmap: %s", strerror(errno));
	FX_TRY(fx_expect_bytes("shared mapping, before", c->sh, 0, mx_orig, MX_FSIZE));
	FX_TRY(fx_expect_bytes("private mapping, before", c->pv, 0, mx_orig, MX_FSIZE));
	FX_TRY(mx_expect_pread("old descriptor", c->fd, mx_orig, MX_FSIZE));
	FX_TRY(fx_expect_sigbus("shared mapping past EOF, before", c->sh, MX_FSIZE, false));
	FX_TRY(fx_write_bytes("private mapping", c->pv, (size_t)c->row->cow * MX_PG, "z", 1));
	FX_TRY(mx_expect_cached(c, (1u << MX_NPG) - 1));
	if (fstat(c->fd, &c->before) < 0)
		return FX_FAIL("fstat: %s", strerror(errno));
	return 0;
}

int mx_client_main(int sock, const void *arg)
{
	const struct mx_row *row = arg;
	struct mx_client c = { .row = row };

	FX_TRY(client_prepare(&c));
	for (int i = 0; i < 2 && row->step[i]; i++) {
		FX_TRY(fx_peer_wait_go(sock));
		FX_TRY(row->step[i](&c));
	}
	return 0;
}

/* ---- the suite ---- */

int mx_run(const char *suite, const struct mx_tcase *tcs, size_t n)
{
	Suite *s = suite_create(suite);

	fx_require_fuse();
	for (size_t i = 0; i < MX_FSIZE; i++)
		mx_orig[i] = (char)('A' + i / MX_PG);
	for (size_t i = 0; i < n; i++)
		fx_add_tests(fx_tcase(s, tcs[i].name, 30, setup, teardown, make_test_file),
			     tcs[i].tests);
	return fx_run_suite(s);
}
