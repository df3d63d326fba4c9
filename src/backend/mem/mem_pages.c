/*
** mem_pages.c -- the data of a regular file in the mem backend: a sparse
** radix tree of 4 KiB pages (64 slots per node, as many levels as the
** highest page index needs).
**
** Invariants:
**   1. A slot holds NULL (a hole), RESERVED (fallocated: present, reads as
**      zeros, no memory) or a malloc'ed 4 KiB page (written).
**   2. node->count is the number of non-NULL slots of the node; a node
**      whose count drops to 0 through mem_pages_zero/truncate is freed.
**   3. p->count is the number of non-NULL leaf slots (present pages): the
**      file's allocated blocks.
**   4. Loops over long ranges visit present pages only (mem_pages_next),
**      so a 1 TiB hole costs nothing, except where the caller has already
**      reserved space for every page of the range (zero range, allocate).
** The caller holds the inode's lock; nothing here locks or accounts space.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem_int.h"

#define FANOUT_SHIFT 6
#define FANOUT (1u << FANOUT_SHIFT)
#define MAX_HEIGHT 8

/* drop() keeps the path in an array of MAX_HEIGHT nodes */
_Static_assert((MEM_MAX_FILE_SIZE >> MEM_PAGE_SHIFT) <= UINT64_C(1) << (FANOUT_SHIFT * MAX_HEIGHT),
	       "files too large for MAX_HEIGHT levels");

struct pnode {
	void *slot[FANOUT];
	unsigned count;
};

static char reserved_marker;
#define RESERVED ((void *)&reserved_marker)

static bool is_page(const void *s)
{
	return s && s != RESERVED;
}

static unsigned shift_of(unsigned level)
{
	return FANOUT_SHIFT * (level - 1);
}

/* True if IDX is beyond what a tree of HEIGHT levels covers. */
static bool beyond(unsigned height, uint64_t idx)
{
	return height == 0 || (FANOUT_SHIFT * height < 64 && idx >> (FANOUT_SHIFT * height));
}

static void *get(const struct mem_pages *p, uint64_t idx)
{
	const struct pnode *n = p->root;
	unsigned level;

	if (beyond(p->height, idx))
		return NULL;
	for (level = p->height; level > 1 && n; level--)
		n = n->slot[(idx >> shift_of(level)) & (FANOUT - 1)];
	return n ? n->slot[idx & (FANOUT - 1)] : NULL;
}

/*
** The leaf slot of IDX, creating the path to it (and growing the tree);
** *LEAF is its node. NULL when memory runs out.
*/
static void **slot_for(struct mem_pages *p, uint64_t idx, struct pnode **leaf)
{
	struct pnode *n;
	unsigned level;

	while (beyond(p->height, idx)) {
		struct pnode *top = calloc(1, sizeof(*top));

		if (!top)
			return NULL;
		if (p->root) {
			top->slot[0] = p->root;
			top->count = 1;
		}
		p->root = top;
		p->height++;
	}
	n = p->root;
	for (level = p->height; level > 1; level--) {
		void **s = &n->slot[(idx >> shift_of(level)) & (FANOUT - 1)];

		if (!*s) {
			*s = calloc(1, sizeof(struct pnode));
			if (!*s)
				return NULL;
			n->count++;
		}
		n = *s;
	}
	*leaf = n;
	return &n->slot[idx & (FANOUT - 1)];
}

/* Puts PAGE (a page or RESERVED) at IDX; frees a written page it replaces. */
static int put(struct mem_pages *p, uint64_t idx, void *page)
{
	struct pnode *leaf;
	void **s = slot_for(p, idx, &leaf);

	if (!s)
		return -ENOMEM;
	if (!*s) {
		leaf->count++;
		p->count++;
	} else if (is_page(*s) && *s != page) {
		free(*s);
	}
	*s = page;
	return 0;
}

/* Makes IDX a hole, freeing its page and every node left empty. */
static void drop(struct mem_pages *p, uint64_t idx)
{
	struct pnode *path[MAX_HEIGHT];
	struct pnode *n = p->root;
	unsigned level, depth = 0;

	if (beyond(p->height, idx))
		return;
	for (level = p->height; level >= 1 && n; level--) {
		path[depth++] = n;
		if (level > 1)
			n = n->slot[(idx >> shift_of(level)) & (FANOUT - 1)];
	}
	if (!n || depth != p->height)
		return;
	{
		void **s = &n->slot[idx & (FANOUT - 1)];

		if (!*s)
			return;
		if (is_page(*s))
			free(*s);
		*s = NULL;
		p->count--;
	}
	/* unwind: an emptied node is freed and cleared in its parent */
	for (level = 1; depth > 0; level++) {
		struct pnode *node = path[--depth];

		node->count--;
		if (node->count > 0)
			break;
		free(node);
		if (depth == 0) {
			p->root = NULL;
			p->height = 0;
			break;
		}
		path[depth - 1]->slot[(idx >> shift_of(level + 1)) & (FANOUT - 1)] = NULL;
	}
}

static void free_node(struct pnode *n, unsigned level)
{
	unsigned i;

	for (i = 0; i < FANOUT; i++) {
		if (!n->slot[i])
			continue;
		if (level > 1)
			free_node(n->slot[i], level - 1);
		else if (is_page(n->slot[i]))
			free(n->slot[i]);
	}
	free(n);
}

void mem_pages_free(struct mem_pages *p)
{
	if (p->root)
		free_node(p->root, p->height);
	p->root = NULL;
	p->height = 0;
	p->count = 0;
}

/* The first page >= IDX below N that is present (WRITTEN: written). */
static bool next_in(const struct pnode *n, unsigned level, uint64_t base, uint64_t idx,
		    bool written, uint64_t *found)
{
	unsigned shift = shift_of(level);
	unsigned i = idx > base ? (unsigned)((idx - base) >> shift) : 0;

	for (; i < FANOUT; i++) {
		uint64_t b = base + ((uint64_t)i << shift);

		if (!n->slot[i])
			continue;
		if (level == 1) {
			if (written && n->slot[i] == RESERVED)
				continue;
			*found = b;
			return true;
		}
		if (next_in(n->slot[i], level - 1, b, idx > b ? idx : b, written, found))
			return true;
	}
	return false;
}

static bool next_page(const struct mem_pages *p, uint64_t idx, bool written, uint64_t *found)
{
	if (beyond(p->height, idx) || !p->root)
		return false;
	return next_in(p->root, p->height, 0, idx, written, found);
}

bool mem_pages_next(const struct mem_pages *p, uint64_t idx, uint64_t *found)
{
	return next_page(p, idx, false, found);
}

uint64_t mem_pages_absent(const struct mem_pages *p, uint64_t off, uint64_t len)
{
	uint64_t first, last, idx, f, present = 0;

	if (len == 0)
		return 0;
	first = off >> MEM_PAGE_SHIFT;
	last = (off + len - 1) >> MEM_PAGE_SHIFT;
	for (idx = first; mem_pages_next(p, idx, &f) && f <= last; idx = f + 1)
		present++;
	return last - first + 1 - present;
}

ssize_t mem_pages_write(struct mem_pages *p, uint64_t off, const void *buf, size_t len)
{
	const char *src = buf;
	size_t done = 0;

	while (done < len) {
		uint64_t pos = off + done;
		uint64_t idx = pos >> MEM_PAGE_SHIFT;
		size_t in = (size_t)(pos & (MEM_PAGE_SIZE - 1));
		size_t n = MEM_PAGE_SIZE - in;
		char *page = get(p, idx);

		if (n > len - done)
			n = len - done;
		if (!is_page(page)) {
			char *fresh = malloc(MEM_PAGE_SIZE);

			if (!fresh)
				break;
			if (n < MEM_PAGE_SIZE)
				memset(fresh, 0, MEM_PAGE_SIZE);
			if (put(p, idx, fresh) < 0) {
				free(fresh);
				break;
			}
			page = fresh;
		}
		memcpy(page + in, src + done, n);
		done += n;
	}
	return done || len == 0 ? (ssize_t)done : -ENOMEM;
}

void mem_pages_read(const struct mem_pages *p, uint64_t off, void *buf, size_t len)
{
	char *dst = buf;
	size_t done = 0;

	while (done < len) {
		uint64_t pos = off + done;
		size_t in = (size_t)(pos & (MEM_PAGE_SIZE - 1));
		size_t n = MEM_PAGE_SIZE - in;
		const char *page = get(p, pos >> MEM_PAGE_SHIFT);

		if (n > len - done)
			n = len - done;
		if (is_page(page))
			memcpy(dst + done, page + in, n);
		else
			memset(dst + done, 0, n);
		done += n;
	}
}

/* Zeroes bytes [in, in+n) of page IDX (a partial page of a range). */
static int zero_part(struct mem_pages *p, uint64_t idx, size_t in, size_t n, bool keep)
{
	char *page = get(p, idx);

	if (is_page(page))
		memset(page + in, 0, n);
	else if (!page && keep)
		return put(p, idx, RESERVED);
	return 0;
}

int mem_pages_zero(struct mem_pages *p, uint64_t off, uint64_t len, bool keep)
{
	uint64_t end = off + len, first, last, idx, f;
	int err;

	if (len == 0)
		return 0;
	first = (off + MEM_PAGE_SIZE - 1) >> MEM_PAGE_SHIFT;    /* whole pages */
	last = end >> MEM_PAGE_SHIFT;                            /* exclusive */
	if (first >= last) {                                     /* within one page */
		if ((off >> MEM_PAGE_SHIFT) == ((end - 1) >> MEM_PAGE_SHIFT))
			return zero_part(p, off >> MEM_PAGE_SHIFT, off & (MEM_PAGE_SIZE - 1),
					 (size_t)len, keep);
	}
	if (off & (MEM_PAGE_SIZE - 1)) {
		size_t in = off & (MEM_PAGE_SIZE - 1);

		err = zero_part(p, off >> MEM_PAGE_SHIFT, in, MEM_PAGE_SIZE - in, keep);
		if (err)
			return err;
	}
	if (end & (MEM_PAGE_SIZE - 1)) {
		err = zero_part(p, end >> MEM_PAGE_SHIFT, 0, end & (MEM_PAGE_SIZE - 1), keep);
		if (err)
			return err;
	}
	if (keep) {
		for (idx = first; idx < last; idx++) {
			err = put(p, idx, RESERVED);
			if (err)
				return err;
		}
	} else {
		for (idx = first; idx < last && mem_pages_next(p, idx, &f) && f < last; idx = f + 1)
			drop(p, f);
	}
	return 0;
}

int mem_pages_allocate(struct mem_pages *p, uint64_t off, uint64_t len)
{
	uint64_t idx, last;

	if (len == 0)
		return 0;
	last = (off + len - 1) >> MEM_PAGE_SHIFT;
	for (idx = off >> MEM_PAGE_SHIFT; idx <= last; idx++) {
		if (!get(p, idx)) {
			int err = put(p, idx, RESERVED);

			if (err)
				return err;
		}
	}
	return 0;
}

void mem_pages_truncate(struct mem_pages *p, uint64_t size)
{
	uint64_t idx = (size + MEM_PAGE_SIZE - 1) >> MEM_PAGE_SHIFT, f;

	while (mem_pages_next(p, idx, &f)) {
		drop(p, f);
		idx = f + 1;
	}
	if (size & (MEM_PAGE_SIZE - 1)) {
		char *page = get(p, size >> MEM_PAGE_SHIFT);
		size_t in = size & (MEM_PAGE_SIZE - 1);

		if (is_page(page))
			memset(page + in, 0, MEM_PAGE_SIZE - in);
	}
}

off_t mem_pages_seek(const struct mem_pages *p, uint64_t off, uint64_t size, bool hole)
{
	uint64_t idx = off >> MEM_PAGE_SHIFT, f, pos;

	if (off >= size)
		return -ENXIO;
	if (!hole) {
		if (!next_page(p, idx, true, &f))
			return -ENXIO;
		pos = f << MEM_PAGE_SHIFT;
		if (pos < off)
			pos = off;
		return pos < size ? (off_t)pos : -ENXIO;
	}
	while ((idx << MEM_PAGE_SHIFT) < size && next_page(p, idx, true, &f) && f == idx)
		idx++;
	pos = idx << MEM_PAGE_SHIFT;
	if (pos < off)
		pos = off;
	return (off_t)(pos < size ? pos : size);
}
