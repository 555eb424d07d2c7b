/* sigbus-stress: N client processes over M files of a sigbusfs mount, checked by an
 * oracle while a controller fires events (see stress.h for the map of the modules). This
 * file sets up the shared region, forks the clients, runs the controller and reaps. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl_client.h"
#include "ctl_xattr.h"
#include "stress.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t version_next(struct run *r)
{
	return atomic_fetch_add(&r->shm->next_version, 1);
}

void file_rel(const struct run *r, unsigned f, char *buf, size_t size)
{
	snprintf(buf, size, "%s/f%u", r->shm->dir, f);
}

void file_abs(const struct run *r, unsigned f, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s/f%u", r->o->mountpoint, r->shm->dir, f);
}

void fmodel_lock(struct fmodel *m)
{
	if (pthread_mutex_lock(&m->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&m->lock);
}

void fmodel_unlock(struct fmodel *m)
{
	pthread_mutex_unlock(&m->lock);
}

/* The shared region: struct shm, then every file's page histories. */
static int shm_create(struct run *r)
{
	size_t hist = sizeof(struct phist) * r->npages,
	       len = sizeof(struct shm) + hist * r->o->files;
	pthread_mutexattr_t ma;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	r->shm = (struct shm *)p;
	atomic_store(&r->shm->next_version, 1);
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	for (unsigned f = 0; f < r->o->files; f++) {
		pthread_mutex_init(&r->shm->f[f].lock, &ma);
		r->shm->f[f].hist = (struct phist *)(p + sizeof(struct shm) + hist * f);
	}
	pthread_mutexattr_destroy(&ma);
	return 0;
}

/* -S, or the socket path the daemon publishes on the mount root. */
static int find_socket(const struct opts *o, char *buf, size_t size)
{
	int rc = 0;

	if (o->socket)
		snprintf(buf, size, "%s", o->socket);
	else
		rc = ctl_client_socket_of(o->mountpoint, buf, size);
	if (rc < 0)
		fprintf(stderr,
			"sigbus-stress: %s: no %s attribute (%s); is it a sigbusfs mount? "
			"Give -S SOCKET.\n",
			o->mountpoint, CTL_XATTR, strerror(-rc));
	return rc;
}

static int fork_clients(struct run *r, pid_t *pids)
{
	for (unsigned i = 0; i < r->o->procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			return -errno;
		if (pids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			_exit(client_main(r, i));
		}
	}
	return 0;
}

/* Stops and reaps the clients: nonzero if one failed other than by reporting. */
static int reap_clients(struct run *r, pid_t *pids)
{
	int bad = 0, status;

	atomic_store(&r->shm->stop, 1);
	for (unsigned i = 0; i < r->o->procs; i++) {
		if (pids[i] <= 0 || waitpid(pids[i], &status, 0) < 0)
			continue;
		if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) {
			fprintf(stderr, "sigbus-stress: client %u died (status 0x%x)\n", i, status);
			bad = 1;
		}
	}
	return bad;
}

static int run(struct run *r, const char *sock)
{
	pid_t pids[MAX_PROCS] = { 0 };
	int rc = controller_setup(r), bad;

	if (rc < 0) {
		fprintf(stderr, "sigbus-stress: creating the files: %s\n", strerror(-rc));
		return 2;
	}
	kw_start(r);
	r->t0_ns = now_ns();
	rc = fork_clients(r, pids);
	if (rc == 0)
		rc = controller_run(r, sock);
	bad = reap_clients(r, pids);
	kw_finish(r);
	if (rc < 0 && !atomic_load(&r->shm->violated))
		fprintf(stderr, "sigbus-stress: the controller failed: %s\n", strerror(-rc));
	rc = atomic_load(&r->shm->violated) || rc < 0 || bad || kw_fails(r) ? 1 : 0;
	report_summary(r, rc);
	report_print_violation(r, sock);
	kw_stop(r);
	return rc;
}

/* Removes the run's directory and files, however the run ended, unless --keep; says
 * where they are when they stay. */
static void remove_files(const struct run *r)
{
	char path[PATH_MAX_STRESS];
	int rc = 0;

	if (!r->shm->dir[0])
		return;
	for (unsigned f = 0; !r->o->keep && f < r->o->files; f++) {
		file_abs(r, f, path, sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT && rc == 0)
			rc = -errno;
	}
	snprintf(path, sizeof(path), "%s/%s", r->o->mountpoint, r->shm->dir);
	if (r->o->keep)
		fprintf(stderr, "sigbus-stress: the files are kept in %s (--keep)\n", path);
	else if (rmdir(path) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0)
		fprintf(stderr, "sigbus-stress: cannot remove %s: %s; remove it by hand\n", path,
			strerror(-rc));
}

int main(int argc, char **argv)
{
	struct opts o;
	struct run r = { .o = &o };
	char sock[4096];
	int rc = opts_parse(argc, argv, &o);

	if (rc != 0)
		return rc > 0 ? 0 : 2;
	r.npages = (unsigned)(o.size / PG);
	if (find_socket(&o, sock, sizeof(sock)) < 0 || shm_create(&r) < 0)
		return 2;
	if (!o.json)
		printf("sigbus-stress: seed %llu, %u procs, %u files of %llu bytes, %s, %.1f s\n",
		       (unsigned long long)o.seed, o.procs, o.files, (unsigned long long)o.size,
		       o.scenario ? o.scenario : "random events", o.duration);
	fflush(stdout);
	rc = run(&r, sock);
	remove_files(&r);
	opts_free(&o);
	return rc;
}
