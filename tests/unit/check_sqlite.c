/* Unit tests of the sqlite backend beyond the contract suite: every way opening can
 * refuse a file (the exact message, nothing mounted, the file left byte for byte as it
 * was), persistence across close and open, recovery after a process killed in the middle
 * of its work, and the reclaiming of orphans. The database is inspected with SQLite
 * itself where the backend API cannot see. */
#include "backend.h"
#include "suite.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define ROOT	   BK_ROOT_INO
#define PAGE	   4096
#define MSG_MAX	   1024
#define NOBODY	   65534
#define F_REG	   (S_IFREG | 0644)
#define F_DIR	   (S_IFDIR | 0755)
#define CRASHES	   12	       /* kill points in test_crash_recovery */
#define KILL_MS	   250	       /* the longest a child runs before it is killed */
#define DATA_LEN   (96 * 1024) /* bytes of each file the crash child fsyncs */
#define WAL_CHUNK  (1 << 20)   /* test_wal_bounded_under_sustained_writes: writes of 1 MiB */
#define WAL_WRITES 768	       /* 768 MiB in all */
#define WAL_SPAN   96	       /* over the first 96 MiB of the file, again and again */
/* The WAL holds the checkpoint's threshold (64 MiB), a batch, and what is written while a
 * checkpoint copies, which a loaded machine stretches (296 MiB seen under contrib/check,
 * more under two suites at once): less than everything written, and started over (its
 * header's salt changed), says it does not grow with the writes. */
#define WAL_BOUND (WAL_WRITES * WAL_CHUNK)

static char dir[64];	  /* a fresh directory per test */
static char path[128];	  /* dir/fs.db */
static char msg[MSG_MAX]; /* what the last open_capture() logged, a line per message */

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_sqlite-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fs.db", dir);
}

static void teardown(void)
{
	char p[sizeof(dir) + 256];
	DIR *d;
	struct dirent *e;

	/* back to root after become_nobody(), to remove what root made */
	if (setresuid(0, 0, 0) < 0 || setresgid(0, 0, 0) < 0)
		fprintf(stderr, "check_sqlite: cannot become root again: %s\n", strerror(errno));
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.')
			unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* The backend's log, into msg. */
static void log_to_msg(void *ctx, enum bk_log_level level, const char *line)
{
	size_t used = strlen(msg);

	snprintf(msg + used, sizeof(msg) - used, "%s\n", line);
}

/* Opens the database at p, what it logs in msg. */
static int open_capture(const char *p, struct bk **out)
{
	const struct bk_source src = { .arg = p };
	const struct bk_log log = { .fn = log_to_msg };

	msg[0] = '\0';
	return bk_open(&bk_sqlite_ops, &src, &log, out);
}

/* Opens the database at path, as a daemon would, without a log. */
static int open_db(struct bk **out)
{
	const struct bk_source src = { .arg = path };

	return bk_open(&bk_sqlite_ops, &src, NULL, out);
}

/* The whole content of file p; *len_out gets its size. */
static char *slurp(const char *p, size_t *len_out)
{
	struct stat st;
	char *buf;
	int fd = open(p, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	ck_assert_int_eq(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len_out = (size_t)st.st_size;
	return buf;
}

/* Asserts that opening fails with rc and prints exactly want ("%s" is the path), and
 * that the file at path is the same, byte for byte, afterwards. */
static void expect_refused(int rc, const char *want)
{
	char expected[MSG_MAX];
	struct bk *b = (struct bk *)1;
	size_t before_len = 0, after_len;
	char *before = access(path, F_OK) == 0 ? slurp(path, &before_len) : NULL, *after;

	ck_assert_int_eq(open_capture(path, &b), rc);
	ck_assert_ptr_null(b);
	snprintf(expected, sizeof(expected), want, path);
	ck_assert_str_eq(msg, expected);
	if (!before)
		return;
	after = slurp(path, &after_len);
	ck_assert_uint_eq(after_len, before_len);
	ck_assert_mem_eq(after, before, before_len);
	free(before);
	free(after);
}

/* Runs sql on the database with SQLite itself. */
static void sql(const char *text)
{
	sqlite3 *db;
	char *err = NULL;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, text, NULL, NULL, &err) == SQLITE_OK, "%s: %s", text, err);
	sqlite3_close(db);
}

/* The integer the query returns (one row, one column). */
static int64_t sql_int(const char *text)
{
	sqlite3_stmt *st;
	sqlite3 *db;
	int64_t v;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, text, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static struct bk *open_ok(void)
{
	struct bk *b;

	ck_assert_int_eq(open_capture(path, &b), 0);
	ck_assert_str_eq(msg, "");
	return b;
}

static uint64_t mk(struct bk *b, uint64_t parent, const char *name, mode_t mode)
{
	const struct bk_new n = { .mode = mode, .uid = 1000, .gid = 100 };
	struct bk_attr a;

	ck_assert_int_eq(bk_mknod(b, parent, name, &n, &a), 0);
	return a.ino;
}

static void fill(struct bk *b, uint64_t ino, off_t off, int c, size_t len)
{
	char *buf = malloc(len);

	memset(buf, c, len);
	ck_assert_int_eq(bk_write(b, ino, 0, buf, len, off), (ssize_t)len);
	free(buf);
}

static void expect_bytes(struct bk *b, uint64_t ino, off_t off, int c, size_t len)
{
	char *buf = malloc(len);

	ck_assert_int_eq(bk_read(b, ino, 0, buf, len, off), (ssize_t)len);
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != (char)c)
			ck_abort_msg("byte %lld is %d, expected %d", (long long)(off + (off_t)i),
				     buf[i], c);
	}
	free(buf);
}

static uint64_t ino_of(struct bk *b, uint64_t parent, const char *name)
{
	struct bk_attr a;

	return bk_lookup(b, parent, name, &a) == 0 ? a.ino : 0;
}

/* A sigbusfs database with a file in it, closed again. */
static void make_db(void)
{
	struct bk *b = open_ok();

	fill(b, mk(b, ROOT, "f", F_REG), 0, 'x', 3 * PAGE);
	bk_close(b);
}

START_TEST(test_refuse_source)
{
	char want[MSG_MAX];

	snprintf(path, sizeof(path), "%s/no/such/dir/fs.db", dir);
	snprintf(want, sizeof(want),
		 "sqlite: %%s: cannot create the database in %s/no/such/dir: No such "
		 "file or directory\n",
		 dir);
	expect_refused(-ENOENT, want);
}
END_TEST

START_TEST(test_refuse_not_sqlite)
{
	char expected[MSG_MAX];
	struct bk *b;
	FILE *f;

	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(expected, sizeof(expected), "sqlite: %s: not a regular file\n", path);
	ck_assert_int_eq(open_capture(path, &b), -EINVAL);
	ck_assert_str_eq(msg, expected);
	ck_assert_int_eq(rmdir(path), 0);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("hello, this is not a database at all\n", f);
	fclose(f);
	expect_refused(-EINVAL, "sqlite: %s: not a SQLite database\n");
}
END_TEST

START_TEST(test_refuse_other_application)
{
	sql("CREATE TABLE t (x); INSERT INTO t VALUES (1); PRAGMA application_id = 42;");
	expect_refused(-EINVAL, "sqlite: %s: not a sigbusfs database: application_id "
				"is 0x0000002a, expected 0x53424653\n");
	sql("PRAGMA application_id = 0;");
	expect_refused(-EINVAL, "sqlite: %s: not a sigbusfs database: application_id "
				"is 0x00000000, expected 0x53424653\n");
	sql("PRAGMA application_id = 1396852307; PRAGMA user_version = 1;"
	    " CREATE TABLE inodes (x);");
	expect_refused(-EINVAL, "sqlite: %s: not a sigbusfs database: table dirents is "
				"missing\n");
}
END_TEST

START_TEST(test_refuse_newer_schema)
{
	make_db();
	sql("PRAGMA user_version = 2;");
	expect_refused(-EINVAL, "sqlite: %s: schema version 2 is newer than this "
				"sigbusfs supports (1)\n");
}
END_TEST

/* Overwrites the b-tree page header of page 2 (the root of the first table) with garbage:
 * its page type byte becomes invalid. The page size is in the file header. */
static void damage_page_2(void)
{
	static const char junk[16] = "\xff\xff\xff\xff\xff\xff\xff\xff\x0d\x0d\x0d\x0d";
	unsigned char hdr[18];
	off_t page;
	int fd = open(path, O_RDWR);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, hdr, sizeof(hdr), 0), sizeof(hdr));
	page = hdr[16] << 8 | hdr[17];
	page = page == 1 ? 65536 : page;
	ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), page), sizeof(junk));
	close(fd);
}

START_TEST(test_refuse_corrupt)
{
	const char *prefix = "sqlite: ";
	char expected[MSG_MAX];
	struct bk *b;

	make_db();
	damage_page_2();
	snprintf(expected, sizeof(expected), "%s%s: corrupt database: ", prefix, path);
	ck_assert_int_eq(open_capture(path, &b), -EIO);
	ck_assert_ptr_null(b);
	ck_assert_msg(strncmp(msg, expected, strlen(expected)) == 0, "message: %s", msg);
	ck_assert_msg(strchr(msg, '\n') == msg + strlen(msg) - 1, "message: %s", msg);
}
END_TEST

/* Drops to an unprivileged user, root writes read-only files; the saved set-user-ID
 * stays 0 so that teardown() can clean up as root. */
static void become_nobody(void)
{
	ck_assert_int_eq(chmod(dir, 0755), 0);
	ck_assert_int_eq(setresgid(NOBODY, NOBODY, 0), 0);
	ck_assert_int_eq(setresuid(NOBODY, NOBODY, 0), 0);
}

START_TEST(test_refuse_read_only)
{
	make_db();
	become_nobody();
	expect_refused(-EACCES, "sqlite: %s: read-only file: Permission denied\n");
}
END_TEST

START_TEST(test_refuse_read_only_dir)
{
	char expected[MSG_MAX];

	make_db();
	ck_assert_int_eq(chown(path, NOBODY, NOBODY), 0);
	become_nobody();
	snprintf(expected, sizeof(expected),
		 "sqlite: %%s: read-only directory %s (the -wal and -shm files go "
		 "there): Permission denied\n",
		 dir);
	expect_refused(-EACCES, expected);
}
END_TEST

/* A child holds the write lock as the sqlite3 shell's BEGIN EXCLUSIVE would. */
START_TEST(test_refuse_locked)
{
	int ready[2], done[2];
	sqlite3 *db;
	pid_t pid;
	char c;

	make_db();
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(done), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (sqlite3_open(path, &db) != SQLITE_OK ||
		    sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK)
			_exit(1);
		if (write(ready[1], "r", 1) != 1 || read(done[0], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	expect_refused(-EBUSY, "sqlite: %s: locked by another process: still busy "
			       "after 2000 ms\n");
	ck_assert_int_eq(write(done[1], "d", 1), 1);
	ck_assert_int_eq(waitpid(pid, &(int){ 0 }, 0), pid);
	bk_close(open_ok());
}
END_TEST

START_TEST(test_create_and_empty_file)
{
	struct bk_attr a;
	struct bk *b = open_ok();

	ck_assert_int_eq(bk_getattr(b, ROOT, &a), 0);
	bk_close(b);
	ck_assert_int_eq(sql_int("PRAGMA application_id"), 0x53424653);
	ck_assert_int_eq(sql_int("PRAGMA user_version"), 1);
	ck_assert_int_eq(unlink(path), 0);
	close(open(path, O_CREAT | O_WRONLY, 0644));
	b = open_ok();
	ck_assert_int_eq(bk_getattr(b, ROOT, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0755);
	bk_close(b);
}
END_TEST

START_TEST(test_persistence)
{
	const struct bk_new n = { .mode = S_IFLNK | 0777 };
	const struct timespec t = { 123456789, 987654321 };
	struct bk_setattr s = { .valid = BK_SET_MTIME, .mtime = t };
	uint64_t d, f, g;
	struct bk_attr a;
	char buf[64];
	struct bk *b = open_ok();

	d = mk(b, ROOT, "dir", F_DIR);
	f = mk(b, d, "file", F_REG);
	g = mk(b, d, "gone", F_REG);
	fill(b, f, 0, 'a', 100);
	fill(b, f, 10 * PAGE, 'b', 3 * PAGE + 7);
	ck_assert_int_eq(bk_setattr(b, f, &s, &a), 0);
	ck_assert_int_eq(bk_symlink(b, d, "link", "../somewhere", &n, &a), 0);
	ck_assert_int_eq(bk_setxattr(b, f, "user.k", "value", 5, 0), 0);
	ck_assert_int_eq(bk_link(b, f, ROOT, "hard", &a), 0);
	ck_assert_int_eq(bk_unlink(b, d, "gone"), 0);
	bk_forget(b, g);
	bk_close(b);

	b = open_ok();
	ck_assert_uint_eq(ino_of(b, ROOT, "dir"), d);
	ck_assert_uint_eq(ino_of(b, d, "file"), f);
	ck_assert_uint_eq(ino_of(b, ROOT, "hard"), f);
	ck_assert_uint_eq(ino_of(b, d, "gone"), 0);
	ck_assert_int_eq(bk_getattr(b, f, &a), 0);
	ck_assert(a.nlink == 2 && a.uid == 1000 && a.size == 13 * PAGE + 7);
	ck_assert(a.mtime.tv_sec == t.tv_sec && a.mtime.tv_nsec == t.tv_nsec);
	ck_assert_uint_eq(a.blocks, 5 * PAGE / 512);
	expect_bytes(b, f, 0, 'a', 100);
	expect_bytes(b, f, 100, 0, 10 * PAGE - 100);
	expect_bytes(b, f, 10 * PAGE, 'b', 3 * PAGE + 7);
	ck_assert_int_eq(bk_lseek(b, f, PAGE, SEEK_DATA), 10 * PAGE);
	ck_assert_int_eq(bk_getxattr(b, f, "user.k", buf, sizeof(buf)), 5);
	ck_assert_int_eq(bk_readlink(b, ino_of(b, d, "link"), buf, sizeof(buf)), 12);
	ck_assert_int_eq(bk_getattr(b, d, &a), 0);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert_int_eq(bk_getattr(b, g, &a), -ENOENT);
	ck_assert_uint_gt(mk(b, ROOT, "new", F_REG), g);
	bk_close(b);
}
END_TEST

/* Content of file k of round r: one byte value per file. */
static int crash_byte(int r, int k)
{
	return 'A' + (r * 7 + k) % 50;
}

static void crash_name(char *buf, size_t size, const char *what, int r, int k)
{
	snprintf(buf, size, "%s%d_%d", what, r, k);
}

/* One step of the crash child's mixed workload: a rename along a chain, a directory
 * made and one removed, a new file with data, a link made and one removed, a write into
 * a shared file and a time change. */
static void crash_step(struct bk *b, int r, int k, uint64_t d)
{
	const struct bk_new dn = { .mode = F_DIR };
	char name[32], old[32];
	struct bk_attr a;
	uint64_t f;

	crash_name(old, sizeof(old), "chain", r, k);
	crash_name(name, sizeof(name), "chain", r, k + 1);
	bk_rename(b, ROOT, old, ROOT, name, 0);
	crash_name(name, sizeof(name), "sub", r, k);
	bk_mknod(b, d, name, &dn, &a);
	crash_name(name, sizeof(name), "sub", r, k - 1);
	bk_rmdir(b, d, name);
	crash_name(name, sizeof(name), "f", r, k);
	f = mk(b, ROOT, name, F_REG);
	fill(b, f, 0, crash_byte(r, k), DATA_LEN);
	crash_name(name, sizeof(name), "h", r, k);
	bk_link(b, f, d, name, &a);
	crash_name(name, sizeof(name), "h", r, k - 1);
	bk_unlink(b, d, name);
	fill(b, ino_of(b, ROOT, "big"), (off_t)(k % 97) * 5000, 'a' + k % 26, 70000);
	bk_setattr(b, f, &(struct bk_setattr){ .valid = BK_SET_ATIME_NOW }, &a);
}

/* The child: reports -1 once it has started, then works until it is killed; after
 * every third step it fsyncs and reports the step, whose files are then durable. */
static void crash_child(int r, int progress)
{
	char name[32];
	struct bk *b;
	uint64_t d;

	if (open_db(&b) < 0)
		_exit(1);
	d = ino_of(b, ROOT, "d");
	if (!d)
		d = mk(b, ROOT, "d", F_DIR);
	if (!ino_of(b, ROOT, "big"))
		mk(b, ROOT, "big", F_REG);
	crash_name(name, sizeof(name), "chain", r, 0);
	mk(b, ROOT, name, F_REG);
	if (write(progress, &(int){ -1 }, sizeof(int)) != sizeof(int))
		_exit(2);
	for (int k = 0;; k++) {
		crash_step(b, r, k, d);
		if (k % 3 == 2 && (bk_fsync(b, ROOT, 0, false) != 0 ||
				   write(progress, &k, sizeof(k)) != sizeof(k)))
			_exit(2);
	}
}

/* The number of rows the query counts must be 0. */
#define EXPECT_NONE(query) ck_assert_msg(sql_int(query) == 0, "not 0: %s", query)

/* The database itself is sound and no metadata is half applied. */
static void crash_check_db(int r)
{
	char chain[128];
	sqlite3_stmt *st;
	sqlite3 *db;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), 0);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	sqlite3_close(db);
	EXPECT_NONE("SELECT count(*) FROM dirents d WHERE NOT EXISTS"
		    " (SELECT 1 FROM inodes i WHERE i.ino = d.ino)");
	EXPECT_NONE("SELECT count(*) FROM inodes i WHERE (mode & 61440) <> 16384 AND nlink <>"
		    " (SELECT count(*) FROM dirents d WHERE d.ino = i.ino)");
	EXPECT_NONE("SELECT count(*) FROM inodes i WHERE (mode & 61440) = 16384 AND nlink > 0"
		    " AND (size <> (SELECT count(*) FROM dirents d WHERE d.parent = i.ino)"
		    " OR nlink <> 2 + (SELECT count(*) FROM dirents d JOIN inodes c"
		    " ON c.ino = d.ino WHERE d.parent = i.ino AND (c.mode & 61440) = 16384))");
	EXPECT_NONE("SELECT count(*) FROM inodes i WHERE nlink = 0 AND NOT EXISTS"
		    " (SELECT 1 FROM orphans o WHERE o.ino = i.ino)");
	EXPECT_NONE("SELECT count(*) FROM chunks c WHERE NOT EXISTS"
		    " (SELECT 1 FROM inodes i WHERE i.ino = c.ino) OR (blob <> 0 AND NOT EXISTS"
		    " (SELECT 1 FROM blobs b WHERE b.id = c.blob))");
	EXPECT_NONE("SELECT count(*) FROM blobs b WHERE NOT EXISTS"
		    " (SELECT 1 FROM chunks c WHERE c.blob = b.id)");
	snprintf(chain, sizeof(chain),
		 "SELECT count(*) > 1 FROM dirents WHERE parent = 1 AND name GLOB 'chain%d_*'", r);
	EXPECT_NONE(chain);
}

/* Every file fsynced up to step durable is there, whole; the dead mount is gone. */
static void crash_check_files(int r, int durable)
{
	char name[32];
	struct bk_attr a;
	struct bk *b = open_ok();

	ck_assert_int_eq(bk_getattr(b, ROOT, &a), 0);
	for (int k = 0; k <= durable; k++) {
		crash_name(name, sizeof(name), "f", r, k);
		ck_assert_msg(bk_lookup(b, ROOT, name, &a) == 0, "%s lost", name);
		ck_assert_uint_eq(a.size, DATA_LEN);
		expect_bytes(b, a.ino, 0, crash_byte(r, k), DATA_LEN);
	}
	ck_assert_int_eq(sql_int("SELECT count(*) FROM mounts"), 1);
	EXPECT_NONE("SELECT count(*) FROM orphans");
	bk_close(b);
}

/* Kills a child at CRASHES points of a mixed workload; after each, SQLite's recovery
 * must leave a sound database with every fsynced byte and no half-applied change. */
START_TEST(test_crash_recovery)
{
	unsigned seed = 1;

	for (int r = 0; r < CRASHES; r++) {
		int progress[2], k, durable = -1, status;
		pid_t pid;

		ck_assert_int_eq(pipe(progress), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(progress[0]);
			crash_child(r, progress[1]);
		}
		close(progress[1]);
		ck_assert_int_eq(read(progress[0], &k, sizeof(k)), sizeof(k));
		usleep((useconds_t)(rand_r(&seed) % KILL_MS) * 1000);
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child: %d",
			      status);
		while (read(progress[0], &k, sizeof(k)) == sizeof(k))
			durable = k;
		close(progress[0]);
		crash_check_db(r);
		crash_check_files(r, durable);
		fprintf(stderr, "crash %d: killed after step %d was fsynced\n", r, durable);
	}
}
END_TEST

/* A child makes an orphan (unlinked, never forgotten), fsyncs and is killed. */
static void orphan_child(int ready)
{
	struct bk *b;
	uint64_t f;

	if (open_db(&b) < 0)
		_exit(1);
	f = mk(b, ROOT, "f", F_REG);
	fill(b, f, 0, 'o', 200000);
	if (bk_unlink(b, ROOT, "f") != 0 || bk_fsync(b, f, 0, false) != 0 ||
	    write(ready, "r", 1) != 1)
		_exit(2);
	pause();
	_exit(3);
}

START_TEST(test_orphans_of_dead_mount)
{
	struct bk_attr a;
	int ready[2];
	struct bk *b;
	pid_t pid;
	char c;

	ck_assert_int_eq(pipe(ready), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		orphan_child(ready[1]);
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &(int){ 0 }, 0), pid);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM orphans"), 1);
	ck_assert_int_gt(sql_int("SELECT count(*) FROM chunks"), 0);
	ck_assert_int_gt(sql_int("SELECT count(*) FROM blobs"), 0);
	b = open_ok();
	ck_assert_int_eq(bk_getattr(b, ROOT, &a), 0);
	EXPECT_NONE("SELECT count(*) FROM orphans");
	EXPECT_NONE("SELECT count(*) FROM chunks");
	EXPECT_NONE("SELECT count(*) FROM blobs");
	ck_assert_int_eq(sql_int("SELECT count(*) FROM inodes"), 1);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM mounts"), 1);
	bk_close(b);
	EXPECT_NONE("SELECT count(*) FROM mounts");
}
END_TEST

/* Another live mount's orphans stay; a mount frees its own at forget or at close. */
START_TEST(test_orphans_live)
{
	struct bk *a = open_ok(), *b;
	uint64_t f = mk(a, ROOT, "f", F_REG), g = mk(a, ROOT, "g", F_REG);
	struct bk_attr attr;

	fill(a, f, 0, 'f', 3 * PAGE);
	fill(a, g, 0, 'g', 3 * PAGE);
	ck_assert_int_eq(bk_unlink(a, ROOT, "f"), 0);
	ck_assert_int_eq(bk_unlink(a, ROOT, "g"), 0);
	ck_assert_int_eq(bk_fsync(a, f, 0, false), 0);
	b = open_ok();
	ck_assert_int_eq(bk_getattr(b, f, &attr), 0);
	ck_assert_uint_eq(attr.nlink, 0);
	expect_bytes(a, f, 0, 'f', 3 * PAGE);
	bk_forget(a, f);
	ck_assert_int_eq(bk_getattr(a, f, &attr), -ENOENT);
	ck_assert_int_eq(bk_fsync(a, ROOT, 0, false), 0);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM orphans"), 1);
	bk_close(a);
	EXPECT_NONE("SELECT count(*) FROM orphans");
	ck_assert_int_eq(bk_getattr(b, g, &attr), -ENOENT);
	bk_close(b);
}
END_TEST

/* fsync commits: another connection sees the bytes at once. */
START_TEST(test_fsync_commits)
{
	struct bk *b = open_ok();
	uint64_t f = mk(b, ROOT, "f", F_REG);

	ck_assert_int_eq(bk_write(b, f, 0, "0123456789", 10, 0), 10);
	ck_assert_int_eq(bk_fsync(b, f, 0, true), 0);
	ck_assert_int_eq(sql_int("SELECT length(data) FROM blobs"), 10);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM changes WHERE kind = 1"), 1);
	bk_close(b);
}
END_TEST

/* Sustained writes never give the checkpointer a moment without a batch open, and a
 * passive checkpoint alone never lets SQLite start the WAL over: it must still be started
 * over, not grow with everything written (it held 885 MiB after 768 MiB of writes). */
START_TEST(test_wal_bounded_under_sustained_writes)
{
	char wal[sizeof(path) + 4], salt[8], last[8] = { 0 };
	struct bk *b = open_ok();
	uint64_t f = mk(b, ROOT, "f", F_REG);
	char *buf = malloc(WAL_CHUNK);
	off_t largest = 0;
	int restarts = -1, fd = -1;
	struct stat st;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	for (int i = 0; i < WAL_WRITES; i++) {
		memset(buf, 'a' + i % 26, WAL_CHUNK);
		ck_assert_int_eq(
			bk_write(b, f, 0, buf, WAL_CHUNK, (off_t)(i % WAL_SPAN) * WAL_CHUNK),
			WAL_CHUNK);
		if (stat(wal, &st) == 0 && st.st_size > largest)
			largest = st.st_size;
		if (fd < 0)
			fd = open(wal, O_RDONLY);
		/* the WAL header's salts (bytes 16-23) change each time it starts over */
		if (fd >= 0 && pread(fd, salt, sizeof(salt), 16) == sizeof(salt) &&
		    memcmp(salt, last, sizeof(salt)) != 0) {
			memcpy(last, salt, sizeof(salt));
			restarts++;
		}
	}
	free(buf);
	bk_close(b);
	if (fd >= 0)
		close(fd);
	fprintf(stderr, "WAL after %d MiB of writes: at most %lld MiB, started over %d times\n",
		WAL_WRITES * (WAL_CHUNK >> 20), (long long)(largest >> 20), restarts);
	ck_assert_int_ge(restarts, 1);
	ck_assert_int_lt(largest, WAL_BOUND);
}
END_TEST

/* Without a limit of its own, the backend refuses to allocate more than the disk has. */
START_TEST(test_statfs_and_enospc)
{
	struct bk *b = open_ok();
	uint64_t f = mk(b, ROOT, "f", F_REG);
	struct statvfs sv, host;
	struct bk_attr a;

	ck_assert_int_eq(bk_statfs(b, &sv), 0);
	ck_assert_int_eq(statvfs(dir, &host), 0);
	ck_assert_uint_eq(sv.f_bsize, PAGE);
	ck_assert_uint_eq(sv.f_blocks * sv.f_frsize, host.f_blocks * host.f_frsize / PAGE * PAGE);
	ck_assert_uint_eq(sv.f_namemax, BK_NAME_MAX);
	ck_assert_uint_gt(sv.f_ffree, 0);
	ck_assert_int_eq(bk_fallocate(b, f, 0, 0, 0, (off_t)((host.f_bavail + 1) * host.f_frsize)),
			 -ENOSPC);
	ck_assert_int_eq(bk_getattr(b, f, &a), 0);
	ck_assert(a.size == 0 && a.blocks == 0);
	ck_assert_int_eq(bk_fallocate(b, f, 0, 0, 0, 16 * PAGE), 0);
	ck_assert_int_eq(bk_getattr(b, f, &a), 0);
	ck_assert(a.size == 16 * PAGE && a.blocks == 16 * PAGE / 512);
	bk_close(b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sqlite");

	fx_unit_tcase(s, "refuse", 60, setup, teardown,
		      FX_TESTS(test_refuse_source, test_refuse_not_sqlite,
			       test_refuse_other_application, test_refuse_newer_schema,
			       test_refuse_corrupt, test_refuse_read_only,
			       test_refuse_read_only_dir, test_refuse_locked));
	fx_unit_tcase(s, "persistence", 60, setup, teardown,
		      FX_TESTS(test_create_and_empty_file, test_persistence, test_fsync_commits,
			       test_statfs_and_enospc));
	fx_unit_tcase(s, "wal", 120, setup, teardown,
		      FX_TESTS(test_wal_bounded_under_sustained_writes));
	fx_unit_tcase(s, "crash", 300, setup, teardown, FX_TESTS(test_crash_recovery));
	fx_unit_tcase(s, "orphans", 60, setup, teardown,
		      FX_TESTS(test_orphans_of_dead_mount, test_orphans_live));
	return fx_run_suite(s);
}
