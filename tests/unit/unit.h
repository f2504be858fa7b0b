/* unit.h — the fast tier: plain C tests of the pure parts (the format's
 * checksum and tags, the filters, wall-time parsing, the statistics, the
 * reader on logs built in memory).  No root, no network, no files: the
 * whole tier runs in well under a second, before every other test.
 *
 * A test is a function registered with UNIT(name); CHECK records a failure
 * with its line and goes on.  The runner prints one "ok"/"FAIL" line per
 * test and ends with "N passed, N failed", like the other tiers. */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>

struct unit_test {
    const char *name;
    void (*fn)(void);
    struct unit_test *next;
};

void unit_register(struct unit_test *t);
void unit_fail(const char *file, int line, const char *what);

#define UNIT(name)                                                             \
    static void name(void);                                                    \
    static struct unit_test unit_##name = { #name, name, 0 };                  \
    __attribute__((constructor)) static void unit_reg_##name(void) { unit_register(&unit_##name); } \
    static void name(void)

#define CHECK(cond)                                    \
    do {                                               \
        if (!(cond))                                   \
            unit_fail(__FILE__, __LINE__, #cond);      \
    } while (0)

#endif
