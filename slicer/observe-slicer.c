/* observe-slicer — turns libobserve logs into something people can query.
 *
 * Commands (git-style): `dump` prints every record of a log as text, one
 * line each; `load` puts logs into an SQLite database (slc_load.c) whose
 * views are the interface (db/schema.sql); `summary` and `export` read it
 * (slc_query.c); `snapshot` copies a database consistently while another
 * process may be writing it (the manager pulls these).
 *
 * Exit status: 0 success, 1 some input could not be read, 2 usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/obs_cli.h"
#include "../common/obs_db.h"
#include "../common/obs_reader.h"
#include "slc.h"

const char *slc_prog = "observe-slicer";

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
            slc_prog);
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
            return obs_usage_error(slc_prog, dump_usage, "dump: unknown option '%s'", argv[i]);
        }
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--records-only") == 0 || strcmp(argv[i], "--") == 0)
            continue;
        nfiles++;
        struct obs_log_reader r;
        if (obs_reader_open(&r, argv[i]) != 0) {
            fprintf(stderr, "%s: %s\n", slc_prog, r.msg);
            status = 1;
            continue;
        }
        if (r.warn[0]) {
            fprintf(stderr, "%s: %s\n", slc_prog, r.warn);
            status = 1;
        }
        if (!records_only)
            obs_fprint_header(stdout, &r);
        struct obs_record rec;
        int rc;
        while ((rc = obs_reader_next(&r, &rec)) != 0) {
            if (rc < 0) {
                fprintf(stderr, "%s: %s\n", slc_prog, r.msg);
                status = 1;
                continue;
            }
            obs_fprint_record(stdout, &rec);
        }
        obs_reader_close(&r);
    }
    if (nfiles == 0) {
        return obs_usage_error(slc_prog, dump_usage, "dump: no log file given%s", "");
    }
    if (fflush(stdout) != 0) {
        perror(slc_prog);
        return 1;
    }
    return status;
}

/* ---- load, summary, export, snapshot ------------------------------------------ */



static void load_usage(FILE *f)
{
    fprintf(f,
            "usage: %s load [-o DB] [-t KEY=VALUE]... [-q] [--progress|--no-progress] [filters]\n       LOGDIR|LOGFILE...\n"
            "\n"
            "Loads libobserve logs into an SQLite database (created if missing).\n"
            "Directories are walked for *.olog files (symbolic links are not followed);\n"
            "a file named here is loaded whatever its name.  Loading the same logs again\n"
            "adds nothing; a log that grew since adds only its new or changed records.\n"
            "Several slicers may load into one database at once.\n"
            "\n"
            "  -o, --db DB          the database (default observe.db)\n"
            "  -t, --add-tag K=V    attach this tag to every process loaded (overrides a\n"
            "                       recorded tag of the same key); repeatable\n"
            "  -q, --quiet          no summary line, no progress\n"
            "  --progress           a progress line on stderr: records, rate, time left (default\n"
            "                       when it is a terminal and the load takes over 2 s); --no-progress\n"
            "\n"
            "%s"
            "\n"
            "Damaged or truncated logs are reported on stderr, one line each naming the\n"
            "file and the damage; every valid record around it is loaded.\n"
            "Exit status: 0 all loaded, 1 some input could not be, 2 usage error.\n",
            slc_prog, obs_filter_help);
}

/* Parses load's command line into o, *dbpath and paths: -1 when it is
 * good, else the exit status (0 after --help, 2 for a usage error). */
static int load_args(int argc, char **argv, struct slc_load_opts *o, const char **dbpath, char **paths, int *npaths)
{
    int dashdash = 0;
    char err[1024];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc;
        if (dashdash || a[0] != '-' || !a[1]) {
            paths[(*npaths)++] = argv[i];
        } else if (strcmp(a, "--") == 0) {
            dashdash = 1;
        } else if (obs_is_help(a)) {
            load_usage(stdout);
            return 0;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
            o->progress = 0;
        } else if (strcmp(a, "--progress") == 0 || strcmp(a, "--no-progress") == 0) {
            o->progress = a[2] == 'p';
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--db") == 0) {
            if (++i >= argc)
                return obs_usage_error(slc_prog, load_usage, "%s needs a value", a);
            *dbpath = argv[i];
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--add-tag") == 0) {
            if (++i >= argc)
                return obs_usage_error(slc_prog, load_usage, "%s needs a value", a);
            if (!obs_tag_valid(argv[i]) || !strchr(argv[i], '='))
                return obs_usage_error(slc_prog, load_usage, "bad tag '%s' (want KEY=VALUE, keys of [A-Za-z0-9_.:-], no ',')",
                                   argv[i]);
            if (o->nadd == SLC_MAX_ADD_TAGS)
                return obs_usage_error(slc_prog, load_usage, "%s", "too many -t tags");
            o->add_tag[o->nadd++] = argv[i];
        } else if ((rc = obs_filter_option(&o->filter, argc, argv, &i, err, sizeof err)) != 0) {
            if (rc < 0)
                return obs_usage_error(slc_prog, load_usage, "%s", err);
        } else {
            return obs_usage_error(slc_prog, load_usage, "unknown option '%s'", a);
        }
    }
    if (*npaths == 0)
        return obs_usage_error(slc_prog, load_usage, "%s", "no log directory or file given");
    return -1;
}

static int cmd_load(int argc, char **argv)
{
    struct slc_load_opts o = { .progress = isatty(2) };
    const char *dbpath = "observe.db";
    char **paths = calloc((size_t)argc, sizeof *paths);
    int npaths = 0;
    char err[1024];
    obs_filter_init(&o.filter);
    int status = paths ? load_args(argc, argv, &o, &dbpath, paths, &npaths) : 1;
    if (status >= 0) {
        free(paths);
        obs_filter_free(&o.filter);
        return status;
    }
    sqlite3 *db;
    if (obs_db_open(dbpath, OBS_DB_WRITE, &db, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", slc_prog, err);
        free(paths);
        obs_filter_free(&o.filter);
        return 1;
    }
    struct slc_load_stats st;
    int rc = slc_load(db, &o, paths, npaths, &st);
    if (sqlite3_close(db) != SQLITE_OK)
        rc = -1;
    if (!o.quiet) {
        uint64_t total = 0;
        for (int t = 0; t < OBS_REC_TYPE_MAX; t++)
            total += st.records[t];
        printf("loaded %llu records (%llu connections, %llu exchanges, %llu datagram sockets, %llu datagrams, "
               "%llu event waits) from %llu logs into %s",
               (unsigned long long)total, (unsigned long long)st.records[OBS_REC_CONN],
               (unsigned long long)st.records[OBS_REC_XCHG], (unsigned long long)st.records[OBS_REC_UDP],
               (unsigned long long)st.records[OBS_REC_DGRAM], (unsigned long long)st.records[OBS_REC_WAIT],
               (unsigned long long)st.files, dbpath);
        if (st.filtered || st.runs_skipped)
            printf("; left out by the filters: %llu records, %llu logs", (unsigned long long)st.filtered,
                   (unsigned long long)st.runs_skipped);
        if (st.problems)
            printf("; %llu problems (see above)", (unsigned long long)st.problems);
        if (st.incomplete)
            printf("; %llu logs incomplete: records dropped (see above)", (unsigned long long)st.incomplete);
        printf("\n");
    }
    free(paths);
    obs_filter_free(&o.filter);
    return rc == 0 ? 0 : 1;
}

static int parse_format(const char *v, enum slc_format *fmt, int table_ok)
{
    if (strcmp(v, "csv") == 0)
        *fmt = SLC_CSV;
    else if (strcmp(v, "json") == 0)
        *fmt = SLC_JSON;
    else if (table_ok && strcmp(v, "table") == 0)
        *fmt = SLC_TABLE;
    else if (!table_ok && strcmp(v, "openmetrics") == 0)
        *fmt = SLC_OPENMETRICS;
    else
        return -1;
    return 0;
}

static void summary_usage(FILE *f)
{
    fprintf(f,
            "usage: %s summary DB [--by server|peer|exe|reuse|tag:KEY] [--format table|csv|json] [filters]\n"
            "\n"
            "For each group of connections (default --by server: the server's label when\n"
            "known, else peer address:port), the count, min, median, p90, p99, max and mean\n"
            "of each phase T1-T7 in milliseconds.  T1, T6 and T7 are counted per connection,\n"
            "T2-T5 per request (each exchange of a keep-alive connection): the column 'per'\n"
            "says which.  Percentiles interpolate linearly between the closest ranks; a\n"
            "phase is counted only where it happened.  Notes on stderr say what the figures\n"
            "leave out: connections without T7 (still open, or their process died), those\n"
            "closed out at their process's exit, processes that dropped records.\n"
            "--by reuse: requests on a fresh connection (first) against those on one\n"
            "already used (reused); connections used once (first) or more (reused).\n"
            "\n"
            "%s",
            slc_prog, obs_filter_help);
}

static void export_usage(FILE *f)
{
    fprintf(f,
            "usage: %s export DB [--what connections|exchanges|datagrams|waits]\n"
            "       [--format csv|json|openmetrics] [-o FILE] [filters]\n"
            "\n"
            "Every row of a view: connections (phases), exchanges (exchange_phases),\n"
            "datagrams (datagram_phases) or waits (event_waits); columns are described in\n"
            "observe-db(5).  CSV has a header line (RFC 4180 quoting, NULL empty); JSON is\n"
            "an array of objects (NULL null).  Default: connections as CSV to stdout.\n"
            "openmetrics: instead, the phases as Prometheus histograms, observe_t1_seconds\n"
            "... observe_t7_seconds (T1, T6, T7 per connection, T2-T5 per request), a\n"
            "series per server, client host and tags (labels server, client_host,\n"
            "tag_KEY), for node_exporter's textfile collector or a Pushgateway.\n"
            "\n"
            "%s",
            slc_prog, obs_filter_help);
}

/* summary and export share their command line: DB, --format, filters. */
struct query_args {
    struct obs_filter f;
    const char *dbpath, *by, *what, *outpath;
    enum slc_format fmt;
};

/* -1 when the command line is good, else the exit status. */
static int query_args(int argc, char **argv, int is_summary, struct query_args *q)
{
    void (*cmd_usage)(FILE *) = is_summary ? summary_usage : export_usage;
    char err[1024];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc;
        if (obs_is_help(a)) {
            cmd_usage(stdout);
            return 0;
        } else if (a[0] != '-') {
            if (q->dbpath)
                return obs_usage_error(slc_prog, cmd_usage, "unexpected argument '%s'", a);
            q->dbpath = a;
        } else if (strcmp(a, "--format") == 0 || strcmp(a, "--by") == 0 || strcmp(a, "--what") == 0 ||
                   strcmp(a, "-o") == 0) {
            if (++i >= argc)
                return obs_usage_error(slc_prog, cmd_usage, "%s needs a value", a);
            if (strcmp(a, "--format") == 0 && parse_format(argv[i], &q->fmt, is_summary) != 0)
                return obs_usage_error(slc_prog, cmd_usage, "bad --format '%s'", argv[i]);
            else if (strcmp(a, "--by") == 0 && is_summary)
                q->by = argv[i];
            else if (strcmp(a, "--what") == 0 && !is_summary)
                q->what = argv[i];
            else if (strcmp(a, "-o") == 0 && !is_summary)
                q->outpath = argv[i];
            else if (strcmp(a, "--format") != 0)
                return obs_usage_error(slc_prog, cmd_usage, "unknown option '%s'", a);
        } else if ((rc = obs_filter_option(&q->f, argc, argv, &i, err, sizeof err)) != 0) {
            if (rc < 0)
                return obs_usage_error(slc_prog, cmd_usage, "%s", err);
        } else {
            return obs_usage_error(slc_prog, cmd_usage, "unknown option '%s'", a);
        }
    }
    if (!q->dbpath)
        return obs_usage_error(slc_prog, cmd_usage, "%s", "no database given");
    if (q->fmt == SLC_OPENMETRICS && strcmp(q->what, "connections") != 0)
        return obs_usage_error(slc_prog, cmd_usage, "--what %s does not apply to --format openmetrics (it exports the phases)",
                               q->what);
    return -1;
}

static int run_query(struct query_args *q, int is_summary)
{
    char err[1024];
    sqlite3 *db;
    if (obs_db_open(q->dbpath, OBS_DB_READ, &db, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", slc_prog, err);
        return 1;
    }
    FILE *out = stdout;
    if (q->outpath && !(out = fopen(q->outpath, "w"))) {
        fprintf(stderr, "%s: %s: %s\n", slc_prog, q->outpath, strerror(errno));
        sqlite3_close(db);
        return 1;
    }
    int rc = is_summary                      ? slc_summary(db, &q->f, q->by, q->fmt, out)
             : q->fmt == SLC_OPENMETRICS ? slc_openmetrics(db, &q->f, out)
                                         : slc_export(db, &q->f, q->what, q->fmt, out);
    sqlite3_close(db);
    if ((out != stdout ? fclose(out) : fflush(out)) != 0 && rc == 0) {
        fprintf(stderr, "%s: %s: %s\n", slc_prog, q->outpath ? q->outpath : "stdout", strerror(errno));
        rc = -1;
    }
    if (rc == -2)
        (is_summary ? summary_usage : export_usage)(stderr);
    return rc == 0 ? 0 : rc == -2 ? 2 : 1;
}

static int cmd_query(int argc, char **argv, int is_summary)
{
    struct query_args q = { .by = "server", .what = "connections", .fmt = is_summary ? SLC_TABLE : SLC_CSV };
    obs_filter_init(&q.f);
    int status = query_args(argc, argv, is_summary, &q);
    if (status < 0)
        status = run_query(&q, is_summary);
    obs_filter_free(&q.f);
    return status;
}

static int cmd_summary(int argc, char **argv) { return cmd_query(argc, argv, 1); }
static int cmd_export(int argc, char **argv) { return cmd_query(argc, argv, 0); }

static void snapshot_usage(FILE *f)
{
    fprintf(f,
            "usage: %s snapshot DB OUT\n"
            "\n"
            "Writes a consistent copy of DB to OUT ('-': standard output) with SQLite's\n"
            "backup API, while other processes may be loading into DB.  OUT is written\n"
            "to a temporary file beside it and renamed into place when complete.  A\n"
            "database made by an older observe is copied, and the copy migrated.\n",
            slc_prog);
}

/* Copies the file at fd to stdout. */
static int copy_to_stdout(int fd)
{
    char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            return -1;
    return n < 0 || fflush(stdout) != 0 ? -1 : 0;
}

static int backup_into(sqlite3 *src, const char *dest, char *err, size_t errlen)
{
    sqlite3 *dst;
    if (sqlite3_open_v2(dest, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", dest, sqlite3_errmsg(dst));
        sqlite3_close(dst);
        return -1;
    }
    /* one step holds one read transaction on the source: a consistent copy */
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    int rc = b ? sqlite3_backup_step(b, -1) : SQLITE_ERROR;
    if (b)
        sqlite3_backup_finish(b);
    if (rc == SQLITE_DONE)
        rc = obs_db_exec(dst, "PRAGMA journal_mode = DELETE", err, errlen) == 0 ? SQLITE_DONE : SQLITE_ERROR;
    else
        snprintf(err, errlen, "%s", sqlite3_errmsg(dst));
    if (sqlite3_close(dst) != SQLITE_OK && rc == SQLITE_DONE) {
        snprintf(err, errlen, "closing the copy failed");
        rc = SQLITE_ERROR;
    }
    return rc == SQLITE_DONE ? 0 : -1;
}

static int cmd_snapshot(int argc, char **argv)
{
    const char *args[2];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (obs_is_help(argv[i])) {
            snapshot_usage(stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1])
            return obs_usage_error(slc_prog, snapshot_usage, "unknown option '%s'", argv[i]);
        if (n == 2)
            return obs_usage_error(slc_prog, snapshot_usage, "unexpected argument '%s'", argv[i]);
        args[n++] = argv[i];
    }
    if (n != 2)
        return obs_usage_error(slc_prog, snapshot_usage, "%s", "want DB and OUT");
    char err[4600];
    sqlite3 *src;
    if (obs_db_open(args[0], OBS_DB_READ_OLDER, &src, err, sizeof err) != 0) {
        obs_text_clean(err);
        fprintf(stderr, "%s: %s\n", slc_prog, err);
        return 1;
    }
    int to_stdout = strcmp(args[1], "-") == 0;
    char tmp[4200];
    if (to_stdout) {
        const char *dir = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/observe-snapshot.XXXXXX", dir && *dir ? dir : "/tmp");
    } else {
        snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", args[1]);
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "%s: cannot create %s: %s\n", slc_prog, tmp, strerror(errno));
        sqlite3_close(src);
        return 1;
    }
    int rc = backup_into(src, tmp, err, sizeof err);
    sqlite3_close(src);
    sqlite3 *copy;
    if (rc == 0 && obs_db_open(tmp, OBS_DB_WRITE, &copy, err, sizeof err) == 0) /* migrates an older copy */
        sqlite3_close(copy);
    else if (rc == 0)
        rc = -1;
    if (rc != 0) {
        obs_text_clean(err); /* SQLite's message may quote the damaged file: keep it one line */
        fprintf(stderr, "%s: snapshot of %s failed: %s\n", slc_prog, args[0], err);
    } else if (to_stdout && copy_to_stdout(fd) != 0) {
        fprintf(stderr, "%s: writing to stdout: %s\n", slc_prog, strerror(errno));
        rc = -1;
    } else if (!to_stdout && (fsync(fd) != 0 || rename(tmp, args[1]) != 0)) {
        fprintf(stderr, "%s: %s: %s\n", slc_prog, args[1], strerror(errno));
        rc = -1;
    }
    close(fd);
    if (to_stdout || rc != 0)
        unlink(tmp);
    return rc == 0 ? 0 : 1;
}

static const struct obs_cmd slc_cmds[] = {
    { "load", cmd_load, "[-o DB] [-t KEY=VALUE]... [filters] LOGDIR|LOGFILE...",
      "load logs into an SQLite database (default observe.db)" },
    { "summary", cmd_summary, "DB [--by server|peer|exe|reuse|tag:KEY] [--format table|csv|json] [filters]",
      "count, min, median, p90, p99, max, mean of T1-T7 per group" },
    { "export", cmd_export, "DB [--what connections|exchanges|datagrams|waits] [--format csv|json]\n"
                            "         [-o FILE] [filters]",
      "every row of a view" },
    { "snapshot", cmd_snapshot, "DB OUT", "a consistent copy of DB (OUT '-' is standard output)" },
    { "dump", cmd_dump, "LOGFILE...", "print the header and every record of each log as text" },
    { NULL, NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
    /* no memory statistics: they take a global mutex on every allocation */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return obs_cli_main(slc_prog, slc_cmds, argc, argv);
}
