/* unit.c — the runner of the C unit tier (unit.h): runs every registered
 * test in the order of its file, or only those named on the command line. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static struct unit_test *first, **last = &first;
static int failures_in_test;

void unit_register(struct unit_test *t)
{
    *last = t;
    last = &t->next;
}

void unit_fail(const char *file, int line, const char *what)
{
    fprintf(stdout, "#   %s:%d: CHECK(%s) failed\n", file, line, what);
    failures_in_test++;
}

static int wanted(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (struct unit_test *t = first; t; t = t->next) {
        if (!wanted(t->name, argc, argv))
            continue;
        failures_in_test = 0;
        t->fn();
        printf("%s - unit.%s\n", failures_in_test ? "FAIL" : "ok", t->name);
        failures_in_test ? failed++ : passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
