/* The not-uptodate dirtying counter (see dirtycount.h): the page-flag bits from the
 * kernel's BTF, a raw-tracepoint BPF program assembled here, its array map, attaching it
 * to writeback_dirty_folio and reading the counts. */
#include "dirtycount.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BTF_PATH   "/sys/kernel/btf/vmlinux"
#define TRACEPOINT "writeback_dirty_folio"
#define INSNS_MAX  40
#define LOG_SIZE   4096

struct dirtycount {
	int map_fd, prog_fd, link_fd;
};

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

/* ---- BTF: the bit numbers of PG_uptodate and PG_private on this kernel ---- */

/* Bytes that follow a type's struct btf_type, by kind. */
static size_t btf_tail(const struct btf_type *t)
{
	unsigned vlen = BTF_INFO_VLEN(t->info);

	switch (BTF_INFO_KIND(t->info)) {
	case BTF_KIND_INT:
	case BTF_KIND_VAR:
	case BTF_KIND_DECL_TAG:
		return 4;
	case BTF_KIND_ARRAY:
		return sizeof(struct btf_array);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		return vlen * sizeof(struct btf_member);
	case BTF_KIND_ENUM:
		return vlen * sizeof(struct btf_enum);
	case BTF_KIND_FUNC_PROTO:
		return vlen * sizeof(struct btf_param);
	case BTF_KIND_DATASEC:
		return vlen * sizeof(struct btf_var_secinfo);
	case BTF_KIND_ENUM64:
		return vlen * sizeof(struct btf_enum64);
	default:
		return 0;
	}
}

/* Finds the values of the members a and b of "enum pageflags" in the BTF blob. */
static int btf_pageflags(const char *blob, size_t len, const char *a, const char *b, int *va,
			 int *vb)
{
	const struct btf_header *h = (const void *)blob;
	const char *types = blob + h->hdr_len + h->type_off, *strs = blob + h->hdr_len + h->str_off;
	const char *end = types + h->type_len;

	if (len < sizeof(*h) || h->magic != BTF_MAGIC || h->hdr_len + h->str_off > len)
		return -EINVAL;
	for (const char *p = types; p < end;) {
		const struct btf_type *t = (const void *)p;
		const struct btf_enum *e = (const void *)(t + 1);

		p += sizeof(*t) + btf_tail(t);
		if (BTF_INFO_KIND(t->info) != BTF_KIND_ENUM ||
		    strcmp(strs + t->name_off, "pageflags"))
			continue;
		*va = *vb = -1;
		for (unsigned i = 0; i < BTF_INFO_VLEN(t->info); i++) {
			if (strcmp(strs + e[i].name_off, a) == 0)
				*va = e[i].val;
			if (strcmp(strs + e[i].name_off, b) == 0)
				*vb = e[i].val;
		}
		return *va >= 0 && *vb >= 0 ? 0 : -ENOENT;
	}
	return -ENOENT;
}

/* sysfs hands a binary attribute out in pieces */
static int read_all(int fd, char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int page_bits(int *uptodate, int *private)
{
	struct stat st;
	char *blob = NULL;
	int rc, fd = open(BTF_PATH, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	/* sysfs reports the blob's real size */
	if (fstat(fd, &st) < 0 || !(blob = malloc((size_t)st.st_size))) {
		rc = -ENOMEM;
		goto out;
	}
	rc = read_all(fd, blob, (size_t)st.st_size);
	if (rc == 0)
		rc = btf_pageflags(blob, (size_t)st.st_size, "PG_uptodate", "PG_private", uptodate,
				   private);
out:
	free(blob);
	close(fd);
	return rc;
}

/* ---- the program ---- */

struct prog {
	struct bpf_insn i[INSNS_MAX];
	unsigned n;
	unsigned exits[4]; /* jumps to patch to the exit */
	unsigned nexits;
};

static void emit(struct prog *p, __u8 code, __u8 dst, __u8 src, __s16 off, __s32 imm)
{
	p->i[p->n++] = (struct bpf_insn){
		.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm
	};
}

/* A conditional jump (op, against imm) to the program's exit, patched by finish(). */
static void jump_to_exit(struct prog *p, __u8 op, __u8 reg, __s32 imm)
{
	p->exits[p->nexits++] = p->n;
	emit(p, BPF_JMP | op | BPF_K, reg, 0, 0, imm);
}

/* map[slot] += 1, atomically. */
static void emit_count(struct prog *p, int map_fd, __s32 slot)
{
	emit(p, BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -16, slot);
	emit(p, BPF_LD | BPF_IMM | BPF_DW, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, map_fd);
	emit(p, 0, 0, 0, 0, 0);
	emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0);
	emit(p, BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -16);
	emit(p, BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 2, 0);
	emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, 1);
	emit(p, BPF_STX | BPF_ATOMIC | BPF_DW, BPF_REG_0, BPF_REG_1, 0, BPF_ADD);
}

/* The tracepoint's first argument is the folio; its first word is the page flags. Counts
 * into slot 0 every folio with neither flag, and into slot 1 those dirtied by tgid. */
static void build(struct prog *p, int map_fd, int uptodate, int private, pid_t tgid)
{
	memset(p, 0, sizeof(*p));
	emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0);
	emit(p, BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_3, BPF_REG_6, 0, 0);
	emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_10, 0, 0);
	emit(p, BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_1, 0, 0, -8);
	emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_2, 0, 0, 8);
	emit(p, BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_probe_read_kernel);
	jump_to_exit(p, BPF_JNE, BPF_REG_0, 0);
	emit(p, BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_1, BPF_REG_10, -8, 0);
	emit(p, BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_1, 0, 0, (1 << uptodate) | (1 << private));
	jump_to_exit(p, BPF_JNE, BPF_REG_1, 0);
	emit(p, BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_current_pid_tgid);
	emit(p, BPF_ALU64 | BPF_RSH | BPF_K, BPF_REG_0, 0, 0, 32);
	emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_7, BPF_REG_0, 0, 0);
	emit_count(p, map_fd, 0);
	jump_to_exit(p, BPF_JNE, BPF_REG_7, tgid);
	emit_count(p, map_fd, 1);
	for (unsigned i = 0; i < p->nexits; i++)
		p->i[p->exits[i]].off = (__s16)(p->n - p->exits[i] - 1);
	emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
	emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

static int load(struct dirtycount *d, int uptodate, int private, pid_t tgid, char *err,
		size_t errlen)
{
	static char log[LOG_SIZE];
	union bpf_attr a;
	struct prog p;

	build(&p, d->map_fd, uptodate, private, tgid);
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_RAW_TRACEPOINT;
	a.insns = (__u64)(unsigned long)p.i;
	a.insn_cnt = p.n;
	a.license = (__u64)(unsigned long)"GPL";
	a.log_buf = (__u64)(unsigned long)log;
	a.log_size = sizeof(log);
	a.log_level = 1;
	d->prog_fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
	if (d->prog_fd < 0) {
		int e = errno;

		snprintf(err, errlen, "bpf(BPF_PROG_LOAD): %s %.200s", strerror(e), log);
		return -e;
	}
	memset(&a, 0, sizeof(a));
	a.raw_tracepoint.name = (__u64)(unsigned long)TRACEPOINT;
	a.raw_tracepoint.prog_fd = (__u32)d->prog_fd;
	d->link_fd = (int)sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &a);
	if (d->link_fd < 0) {
		snprintf(err, errlen, "bpf(BPF_RAW_TRACEPOINT_OPEN %s): %s", TRACEPOINT,
			 strerror(errno));
		return -errno;
	}
	return 0;
}

int dirtycount_open(pid_t tgid, struct dirtycount **out, char *err, size_t errlen)
{
	struct dirtycount *d = calloc(1, sizeof(*d));
	union bpf_attr a;
	int uptodate = -1, private = -1, rc;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->map_fd = d->prog_fd = d->link_fd = -1;
	rc = page_bits(&uptodate, &private);
	if (rc < 0) {
		snprintf(err, errlen, "enum pageflags in %s: %s", BTF_PATH, strerror(-rc));
		goto out_free;
	}
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = sizeof(__u32);
	a.value_size = sizeof(__u64);
	a.max_entries = 2;
	d->map_fd = (int)sys_bpf(BPF_MAP_CREATE, &a);
	if (d->map_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "bpf(BPF_MAP_CREATE): %s", strerror(errno));
		goto out_free;
	}
	rc = load(d, uptodate, private, tgid, err, errlen);
	if (rc < 0)
		goto out_free;
	*out = d;
	return 0;
out_free:
	dirtycount_close(d);
	return rc;
}

static int lookup(const struct dirtycount *d, __u32 key, uint64_t *value)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = (__u32)d->map_fd;
	a.key = (__u64)(unsigned long)&key;
	a.value = (__u64)(unsigned long)value;
	return sys_bpf(BPF_MAP_LOOKUP_ELEM, &a) < 0 ? -errno : 0;
}

int dirtycount_read(const struct dirtycount *d, uint64_t *all, uint64_t *mine)
{
	int rc = lookup(d, 0, all);

	return rc < 0 ? rc : lookup(d, 1, mine);
}

void dirtycount_close(struct dirtycount *d)
{
	if (!d)
		return;
	if (d->link_fd >= 0)
		close(d->link_fd);
	if (d->prog_fd >= 0)
		close(d->prog_fd);
	if (d->map_fd >= 0)
		close(d->map_fd);
	free(d);
}
