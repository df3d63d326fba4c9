/*
** node_table.h -- the frontend's record of what the kernel knows: the
** lookup count of every inode it was handed (one owner: this table).
**
** INVARIANTS
** (1) count(ino) == successful entry replies for ino - nlookup forgotten.
** (2) An inode with count 0 is absent from the table.
** The root (ino 1) is always known and has no slot.
** Thread-safe (one mutex, a leaf lock; never held across a reply).
*/
#ifndef EDDY_NODE_TABLE_H
#define EDDY_NODE_TABLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct node_slot {
	uint64_t ino;              /* 0: empty */
	uint64_t nlookup;
	uint64_t seq;              /* bumped when an entry below it changed */
};

struct node_table {
	pthread_mutex_t lock;
	struct node_slot *slots;
	size_t cap;                /* power of two */
	size_t used;
	uint64_t total;            /* sum of nlookup */
	uint64_t refs, forgets;    /* lifetime counters */
	uint64_t root_seq;         /* the root is known without a slot */
	uint64_t global_seq;       /* bumped by "everything changed" */
};

int node_table_init(struct node_table *t);
void node_table_free(struct node_table *t);
void node_table_ref(struct node_table *t, uint64_t ino, uint64_t n);
/* Returns the remaining count. */
uint64_t node_table_forget(struct node_table *t, uint64_t ino, uint64_t n);
bool node_table_known(struct node_table *t, uint64_t ino);
/* The lookup/invalidate race: a handler reads node_table_seq(parent)
** before it asks the implementation and again after it replied; if the
** value moved, a change raced the reply and the entry is invalidated again. */
uint64_t node_table_seq(struct node_table *t, uint64_t ino);
void node_table_bump(struct node_table *t, uint64_t ino);
void node_table_bump_all(struct node_table *t);
/* Calls FN for every known inode, the root included (snapshot order). */
void node_table_each(struct node_table *t, void (*fn)(void *, uint64_t), void *arg);
void node_table_counts(struct node_table *t, size_t *known, uint64_t *total, uint64_t *refs,
		       uint64_t *forgets);

#endif /* EDDY_NODE_TABLE_H */
