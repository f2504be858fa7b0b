/* obs_cli.h — the command-line conventions observe-slicer and
 * observe-manager share: --help/-h, and a usage error as one line naming
 * what is wrong followed by the command's usage (exit status 2).
 */
#ifndef OBS_CLI_H
#define OBS_CLI_H

#include <stdio.h>
#include <string.h>

static inline int obs_is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* Prints "PROG: <fmt with arg>" and the usage to stderr; returns 2. */
__attribute__((format(printf, 3, 0))) static inline int obs_usage_error(const char *prog, void (*usage)(FILE *),
                                                                       const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    usage(stderr);
    return 2;
}

#endif
