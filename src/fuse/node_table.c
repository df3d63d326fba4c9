/*
** node_table.c -- open-addressing hash of kernel lookup counts (linear
** probing, deletion by backward shift, so there are no tombstones).
** 24 bytes per slot at a load factor of at most 3/4.
*/
#include <errno.h>
#include <stdlib.h>

#include "node_table.h"

static size_t slot_of(const struct node_table *t, uint64_t ino)
{
	ino *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(ino ^ (ino >> 29)) & (t->cap - 1);
}

int node_table_init(struct node_table *t)
{
	t->cap = 1024;
	t->used = 0;
	t->total = t->refs = t->forgets = 0;
	t->root_seq = t->global_seq = 0;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void node_table_free(struct node_table *t)
{
	free(t->slots);
	pthread_mutex_destroy(&t->lock);
}

static struct node_slot *find(struct node_table *t, uint64_t ino, bool *found)
{
	size_t i = slot_of(t, ino);

	while (t->slots[i].ino && t->slots[i].ino != ino)
		i = (i + 1) & (t->cap - 1);
	*found = t->slots[i].ino == ino;
	return &t->slots[i];
}

static void grow(struct node_table *t)
{
	struct node_slot *old = t->slots;
	size_t oldcap = t->cap, i;
	bool found;

	t->slots = calloc(oldcap * 2, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;        /* stay at a higher load */
		return;
	}
	t->cap = oldcap * 2;
	for (i = 0; i < oldcap; i++)
		if (old[i].ino)
			*find(t, old[i].ino, &found) = old[i];
	free(old);
}

void node_table_ref(struct node_table *t, uint64_t ino, uint64_t n)
{
	struct node_slot *s;
	bool found;

	pthread_mutex_lock(&t->lock);
	if ((t->used + 1) * 4 > t->cap * 3)      /* load factor <= 3/4 */
		grow(t);
	s = find(t, ino, &found);
	if (!found) {
		s->ino = ino;
		s->nlookup = 0;
		s->seq = 0;
		t->used++;
	}
	s->nlookup += n;
	t->total += n;
	t->refs += n;
	pthread_mutex_unlock(&t->lock);
}

/* Removes slot I and shifts back the run that follows it. */
static void remove_at(struct node_table *t, size_t i)
{
	size_t j = i;

	t->slots[i].ino = 0;
	for (;;) {
		size_t k;

		j = (j + 1) & (t->cap - 1);
		if (!t->slots[j].ino)
			break;
		k = slot_of(t, t->slots[j].ino);
		/* move j to i if k is not cyclically in (i, j] */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		t->slots[i] = t->slots[j];
		t->slots[j].ino = 0;
		i = j;
	}
	t->used--;
}

uint64_t node_table_forget(struct node_table *t, uint64_t ino, uint64_t n)
{
	struct node_slot *s;
	uint64_t left = 0;
	bool found;

	pthread_mutex_lock(&t->lock);
	s = find(t, ino, &found);
	if (found) {
		if (n > s->nlookup)
			n = s->nlookup;
		s->nlookup -= n;
		t->total -= n;
		t->forgets += n;
		left = s->nlookup;
		if (left == 0)
			remove_at(t, (size_t)(s - t->slots));
	}
	pthread_mutex_unlock(&t->lock);
	return left;
}

bool node_table_known(struct node_table *t, uint64_t ino)
{
	bool found;

	if (ino == 1)
		return true;
	pthread_mutex_lock(&t->lock);
	find(t, ino, &found);
	pthread_mutex_unlock(&t->lock);
	return found;
}

void node_table_counts(struct node_table *t, size_t *known, uint64_t *total, uint64_t *refs,
		       uint64_t *forgets)
{
	pthread_mutex_lock(&t->lock);
	*known = t->used;
	*total = t->total;
	*refs = t->refs;
	*forgets = t->forgets;
	pthread_mutex_unlock(&t->lock);
}

uint64_t node_table_seq(struct node_table *t, uint64_t ino)
{
	struct node_slot *s;
	uint64_t seq;
	bool found;

	pthread_mutex_lock(&t->lock);
	if (ino == 1) {
		seq = t->root_seq;
	} else {
		s = find(t, ino, &found);
		seq = found ? s->seq : 0;
	}
	seq += t->global_seq;
	pthread_mutex_unlock(&t->lock);
	return seq;
}

void node_table_bump(struct node_table *t, uint64_t ino)
{
	struct node_slot *s;
	bool found;

	pthread_mutex_lock(&t->lock);
	if (ino == 1) {
		t->root_seq++;
	} else {
		s = find(t, ino, &found);
		if (found)
			s->seq++;
	}
	pthread_mutex_unlock(&t->lock);
}

void node_table_bump_all(struct node_table *t)
{
	pthread_mutex_lock(&t->lock);
	t->global_seq++;
	pthread_mutex_unlock(&t->lock);
}

void node_table_each(struct node_table *t, void (*fn)(void *, uint64_t), void *arg)
{
	uint64_t *inos;
	size_t i, n = 0;

	pthread_mutex_lock(&t->lock);
	inos = malloc((t->used + 1) * sizeof(*inos));
	if (inos) {
		inos[n++] = 1;
		for (i = 0; i < t->cap; i++)
			if (t->slots[i].ino)
				inos[n++] = t->slots[i].ino;
	}
	pthread_mutex_unlock(&t->lock);
	for (i = 0; i < n; i++)
		fn(arg, inos[i]);
	free(inos);
}
