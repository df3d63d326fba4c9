/*
** mem.h -- the "mem" backend: a POSIX filesystem that lives in RAM only.
** See mem.c for what it guarantees.
*/
#ifndef EDDY_MEM_H
#define EDDY_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../fs.h"

struct mem_options {
	double entry_timeout;      /* seconds the kernel may cache a name */
	double attr_timeout;       /* seconds the kernel may cache attributes */
	double negative_timeout;   /* seconds the kernel may cache an absence */
	bool keep_cache;           /* keep page cache across opens */
	bool cache_readdir;        /* let the kernel cache directory listings */
	uint64_t max_bytes;        /* data, xattrs, symlinks; 0: physical RAM */
	uint64_t max_inodes;       /* 0: unlimited */
};

/* Day-long caches (nothing changes behind the backend's back), no limits. */
void mem_options_default(struct mem_options *o);

/* Parses the parameters of a "mem:" source: "" or a comma-separated list
** of size=N[K|M|G|T] and inodes=N[K|M|G]. On failure returns -EINVAL and
** writes a one-line reason into ERR. */
int mem_options_parse(const char *params, struct mem_options *o, char *err, size_t errlen);

/* Creates an empty filesystem (a root directory 0755 owned by the calling
** process). On failure returns a negative errno and a reason in ERR. */
int mem_fs_open(const struct mem_options *o, struct eddy_fs **out, char *err, size_t errlen);

#endif /* EDDY_MEM_H */
