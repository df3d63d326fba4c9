/*
** unit.h -- a tiny unit-test harness: TEST() registers a case, CHECK()
** records a failure with file and line and returns from the case.
*/
#ifndef EDDY_UNIT_H
#define EDDY_UNIT_H

#include <stdio.h>

struct unit_case {
	const char *name;
	void (*fn)(int *failed);
	struct unit_case *next;
};

void unit_register(struct unit_case *c);

#define TEST(name)                                                            \
	static void name(int *unit_failed);                                   \
	static struct unit_case name##_case = { #name, name, NULL };          \
	__attribute__((constructor)) static void name##_reg(void)             \
	{                                                                     \
		unit_register(&name##_case);                                  \
	}                                                                     \
	static void name(int *unit_failed)

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #cond);                             \
			*unit_failed = 1;                                     \
			return;                                               \
		}                                                             \
	} while (0)

#define CHECK_EQ(a, b)                                                        \
	do {                                                                  \
		long long unit_a = (long long)(a), unit_b = (long long)(b);   \
		if (unit_a != unit_b) {                                       \
			fprintf(stderr, "  %s:%d: CHECK_EQ failed: %s == %lld, " \
				"%s == %lld\n", __FILE__, __LINE__, #a, unit_a, \
				#b, unit_b);                                  \
			*unit_failed = 1;                                     \
			return;                                               \
		}                                                             \
	} while (0)

#endif /* EDDY_UNIT_H */
