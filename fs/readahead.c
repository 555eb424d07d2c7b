/* Finds a mount's device number in /proc/self/mountinfo and sets its bdi's readahead. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "readahead.h"

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* The device of the last mount on mountpoint: 0 with *maj and *min, or -errno. */
static int mount_dev(const char *mountpoint, unsigned *maj, unsigned *min)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, path[4096];
	size_t cap = 0;
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		unsigned a, b;

		/* mountinfo escapes blanks, so the mount point is one word */
		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &a, &b, path) != 3)
			continue;
		unescape(path);
		if (strcmp(path, mountpoint) == 0) {
			*maj = a;
			*min = b;
			rc = 0;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

int readahead_set(const char *mountpoint, unsigned kb)
{
	char path[64], val[16];
	unsigned maj = 0, min = 0;
	int fd, n, rc = mount_dev(mountpoint, &maj, &min);

	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(val, sizeof(val), "%u\n", kb);
	if (write(fd, val, (size_t)n) < 0)
		rc = -errno;
	close(fd);
	return rc;
}
