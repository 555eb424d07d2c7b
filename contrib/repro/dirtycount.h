/* Counting what the kernel's WARN_ON_ONCE in __folio_mark_dirty checks for, every time,
 * not once per boot: a BPF program on the writeback_dirty_folio tracepoint (which
 * __folio_mark_dirty reaches right after its check, with the same folio) counts folios
 * dirtied while not uptodate and without private data. Needs root, CONFIG_BPF_SYSCALL,
 * BTF (/sys/kernel/btf/vmlinux) and tracepoints; no kprobes, fentry or libbpf. */
#ifndef SIGBUS_DIRTYCOUNT_H
#define SIGBUS_DIRTYCOUNT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct dirtycount;

/* Loads and attaches the counter. tgid: the process whose dirtyings are also counted
 * apart (0: none). 0 or -errno, with the reason in err (e.g. "bpf(BPF_PROG_LOAD):
 * Operation not permitted"). */
int dirtycount_open(pid_t tgid, struct dirtycount **out, char *err, size_t errlen);

/* The counts since dirtycount_open(): by every process, and by tgid. 0 or -errno. */
int dirtycount_read(const struct dirtycount *d, uint64_t *all, uint64_t *mine);

/* Detaches and frees; NULL is a no-op. */
void dirtycount_close(struct dirtycount *d);

#endif
