/*
** test_node_table.c -- the frontend's lookup-count table: counting,
** forgetting, removal with backward shift under heavy collisions and growth.
*/
#include <stdlib.h>

#include "unit.h"
#include "fuse/node_table.h"

TEST(node_table_counts_and_forgets)
{
	struct node_table t;
	size_t known;
	uint64_t total, refs, forgets, i;

	CHECK(node_table_init(&t) == 0);
	for (i = 2; i < 20002; i++)
		node_table_ref(&t, i, i % 3 + 1);
	node_table_counts(&t, &known, &total, &refs, &forgets);
	CHECK_EQ(known, 20000);
	for (i = 2; i < 20002; i += 2)
		CHECK_EQ(node_table_forget(&t, i, i % 3 + 1), 0);
	for (i = 3; i < 20002; i += 2) {
		CHECK(node_table_known(&t, i));
		CHECK(!node_table_known(&t, i - 1));
	}
	for (i = 3; i < 20002; i += 2)
		CHECK_EQ(node_table_forget(&t, i, 1), i % 3);
	for (i = 3; i < 20002; i += 2)
		node_table_forget(&t, i, 100);       /* over-forget clamps at 0 */
	node_table_counts(&t, &known, &total, &refs, &forgets);
	CHECK_EQ(known, 0);
	CHECK_EQ(total, 0);
	CHECK_EQ(refs, forgets);
	CHECK_EQ(node_table_forget(&t, 12345678, 1), 0);   /* unknown: no-op */
	node_table_free(&t);
}

TEST(node_table_random_model)
{
	struct node_table t;
	static uint64_t model[512];
	unsigned seed = 7;
	int i;

	CHECK(node_table_init(&t) == 0);
	for (i = 0; i < 200000; i++) {
		uint64_t ino = (uint64_t)(rand_r(&seed) % 512) + 2;

		if (rand_r(&seed) % 2) {
			node_table_ref(&t, ino * 1024, 1);
			model[ino - 2]++;
		} else {
			uint64_t left = node_table_forget(&t, ino * 1024, 1);

			if (model[ino - 2])
				model[ino - 2]--;
			CHECK_EQ(left, model[ino - 2]);
		}
	}
	for (i = 0; i < 512; i++)
		CHECK_EQ(node_table_known(&t, (uint64_t)(i + 2) * 1024), model[i] > 0);
	node_table_free(&t);
}
