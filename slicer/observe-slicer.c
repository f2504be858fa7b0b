/* observe-slicer — turns libobserve logs into something people can query.
 *
 * Commands (git-style): `dump` prints every record of a log as text, one
 * line each; the SQLite commands (load, summary, export, snapshot) build on
 * the same reader in common/.
 *
 * Exit status: 0 success, 1 some input could not be read, 2 usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/obs_reader.h"

static const char *prog = "observe-slicer";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  dump LOGFILE...    print the header and every record of each log as text\n"
            "\n"
            "Run '%s COMMAND --help' for a command's options.\n",
            prog, prog);
}

static void dump_usage(FILE *f)
{
    fprintf(f,
            "usage: %s dump [--records-only] LOGFILE...\n"
            "\n"
            "Prints each log's header ('log', 'counters', 'waits' lines) and then one\n"
            "line per record: its type (conn, xchg, udp, dgram, wait), offset, state\n"
            "(final, or open: still live or never closed) and every field as\n"
            "name=value; absent timestamps print as '-'.  Connection lines end with\n"
            "the periods t1_ms..t7_ms computed from the timestamps.\n"
            "Problems (torn or damaged records) go to stderr, naming file and offset;\n"
            "every valid record around them is still printed.\n"
            "\n"
            "  --records-only   omit the header lines\n",
            prog);
}

static int cmd_dump(int argc, char **argv)
{
    int records_only = 0, status = 0, nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            dump_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--records-only") == 0) {
            records_only = 1;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] && strcmp(argv[i], "--") != 0) {
            fprintf(stderr, "%s dump: unknown option '%s'\n", prog, argv[i]);
            dump_usage(stderr);
            return 2;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--records-only") == 0 || strcmp(argv[i], "--") == 0)
            continue;
        nfiles++;
        struct obs_log_reader r;
        if (obs_reader_open(&r, argv[i]) != 0) {
            fprintf(stderr, "%s: %s\n", prog, r.msg);
            status = 1;
            continue;
        }
        if (r.warn[0]) {
            fprintf(stderr, "%s: %s\n", prog, r.warn);
            status = 1;
        }
        if (!records_only)
            obs_fprint_header(stdout, &r);
        struct obs_record rec;
        int rc;
        while ((rc = obs_reader_next(&r, &rec)) != 0) {
            if (rc < 0) {
                fprintf(stderr, "%s: %s\n", prog, r.msg);
                status = 1;
                continue;
            }
            obs_fprint_record(stdout, &rec);
        }
        obs_reader_close(&r);
    }
    if (nfiles == 0) {
        fprintf(stderr, "%s dump: no log file given\n", prog);
        dump_usage(stderr);
        return 2;
    }
    if (fflush(stdout) != 0) {
        perror(prog);
        return 1;
    }
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "dump") == 0)
        return cmd_dump(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
    usage(stderr);
    return 2;
}
