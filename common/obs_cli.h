/* obs_cli.h — the command-line conventions observe-slicer and
 * observe-manager share: a table of subcommands (the dispatch and the
 * top-level help are made from it), --help/-h, and a usage error as one
 * line naming what is wrong followed by the command's usage (exit status 2).
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

/* A subcommand: its name, what runs it (argv[0] is the name), its synopsis
 * (lines after the first begin with spaces) and one line on what it does. */
struct obs_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *synopsis;
    const char *what;
};

static inline void obs_cli_usage(FILE *f, const char *prog, const struct obs_cmd *cmds)
{
    fprintf(f, "usage: %s COMMAND [ARGS]\n\ncommands:\n", prog);
    for (const struct obs_cmd *c = cmds; c->name; c++)
        fprintf(f, "  %s %s\n                     %s\n", c->name, c->synopsis, c->what);
    fprintf(f, "\nRun '%s COMMAND --help' for a command's options.\n", prog);
}

/* main() of a tool made of subcommands. */
static inline int obs_cli_main(const char *prog, const struct obs_cmd *cmds, int argc, char **argv)
{
    if (argc < 2) {
        obs_cli_usage(stderr, prog, cmds);
        return 2;
    }
    if (obs_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        obs_cli_usage(stdout, prog, cmds);
        return 0;
    }
    for (const struct obs_cmd *c = cmds; c->name; c++)
        if (strcmp(argv[1], c->name) == 0)
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
    obs_cli_usage(stderr, prog, cmds);
    return 2;
}

#endif
