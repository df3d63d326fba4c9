/*
** mem_dir.c -- the entries of one directory of the mem backend.
**
** Invariants:
**   1. Every live entry is in the name hash (found in O(1)) and in
**      d->order, which is sorted by cookie; a removed entry leaves a NULL
**      slot there until the array is compacted (when most slots are
**      holes), so removal never moves other entries' cookies.
**   2. Cookies grow with every entry added to this directory and are
**      never reused in it: a listing resumed after cookie C continues with
**      the first live entry whose cookie is > C (binary search), whatever
**      was added or removed meanwhile; an entry present for the whole
**      listing is seen exactly once.
**   3. Cookies 1 and 2 stand for "." and ".."; entries start at 3.
** The caller holds ns_lock (shared to read, exclusive to change).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem_int.h"

#define FIRST_COOKIE 3

static uint32_t name_hash(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h;
}

void mem_dir_init(struct mem_dir *d, uint64_t parent)
{
	memset(d, 0, sizeof(*d));
	d->next_cookie = FIRST_COOKIE;
	d->parent = parent;
}

void mem_dir_free(struct mem_dir *d)
{
	size_t i;

	for (i = 0; i < d->norder; i++)
		free(d->order[i].de);
	free(d->order);
	free(d->buckets);
	memset(d, 0, sizeof(*d));
}

struct mem_dirent *mem_dir_find(const struct mem_dir *d, const char *name)
{
	uint32_t h;
	struct mem_dirent *de;

	if (!d->buckets)
		return NULL;
	h = name_hash(name);
	for (de = d->buckets[h & (d->nbuckets - 1)]; de; de = de->hnext)
		if (de->hash == h && strcmp(de->name, name) == 0)
			return de;
	return NULL;
}

/* Doubles the hash table once the load passes 1 (or creates it). */
static int grow_hash(struct mem_dir *d)
{
	size_t n = d->nbuckets ? d->nbuckets * 2 : 8, i;
	struct mem_dirent **b;

	if (d->buckets && d->count < d->nbuckets)
		return 0;
	b = calloc(n, sizeof(*b));
	if (!b)
		return d->buckets ? 0 : -ENOMEM;    /* longer chains are fine */
	for (i = 0; i < d->nbuckets; i++) {
		struct mem_dirent *de = d->buckets[i], *next;

		for (; de; de = next) {
			next = de->hnext;
			de->hnext = b[de->hash & (n - 1)];
			b[de->hash & (n - 1)] = de;
		}
	}
	free(d->buckets);
	d->buckets = b;
	d->nbuckets = n;
	return 0;
}

/* Drops the holes of d->order once they outnumber live entries. */
static void compact(struct mem_dir *d)
{
	size_t i, j = 0;

	if (d->norder < 32 || d->norder < 2 * d->count)
		return;
	for (i = 0; i < d->norder; i++)
		if (d->order[i].de)
			d->order[j++] = d->order[i];
	d->norder = j;
}

int mem_dir_add(struct mem_dir *d, const char *name, struct mem_inode *in)
{
	size_t len = strlen(name);
	struct mem_dirent *de;
	size_t b;

	if (grow_hash(d) < 0)
		return -ENOMEM;
	if (d->norder == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		struct mem_slot *o = realloc(d->order, cap * sizeof(*o));

		if (!o)
			return -ENOMEM;
		d->order = o;
		d->cap = cap;
	}
	de = malloc(sizeof(*de) + len + 1);
	if (!de)
		return -ENOMEM;
	memcpy(de->name, name, len + 1);
	de->inode = in;
	de->hash = name_hash(name);
	de->cookie = d->next_cookie++;
	b = de->hash & (d->nbuckets - 1);
	de->hnext = d->buckets[b];
	d->buckets[b] = de;
	d->order[d->norder].cookie = de->cookie;
	d->order[d->norder].de = de;
	d->norder++;
	d->count++;
	return 0;
}

/* Index of the first slot whose cookie is > COOKIE (d->norder if none). */
static size_t slot_after(const struct mem_dir *d, uint64_t cookie)
{
	size_t lo = 0, hi = d->norder;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (d->order[mid].cookie <= cookie)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void mem_dir_remove(struct mem_dir *d, struct mem_dirent *de)
{
	struct mem_dirent **p = &d->buckets[de->hash & (d->nbuckets - 1)];
	size_t i;

	while (*p && *p != de)
		p = &(*p)->hnext;
	if (*p)
		*p = de->hnext;
	i = slot_after(d, de->cookie - 1);
	if (i < d->norder && d->order[i].de == de)
		d->order[i].de = NULL;
	d->count--;
	free(de);
	compact(d);
}

struct mem_dirent *mem_dir_next(const struct mem_dir *d, uint64_t cookie)
{
	size_t i;

	for (i = slot_after(d, cookie); i < d->norder; i++)
		if (d->order[i].de)
			return d->order[i].de;
	return NULL;
}
