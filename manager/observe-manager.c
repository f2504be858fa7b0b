/* observe-manager — collects what many client hosts measured and shows it.
 *
 *   pull    ssh to each client host (N at a time), bring back a consistent
 *           snapshot of its observe database, check it, merge it;
 *   merge   the same for database files already here;
 *   plot    gnuplot plots (PNG and SVG) of latency across server hosts and
 *           their event mechanisms;
 *   report  one static HTML page with every plot and the summary tables.
 *
 * Exit status: 0 success, 1 some host or input failed, 2 usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/obs_cli.h"
#include "../common/obs_db.h"
#include "mgr.h"

const char *mgr_prog = "observe-manager";

static void pull_usage(FILE *f)
{
    fprintf(f,
            "usage: %s pull [-j N] [-F SSH_CONFIG] [--db DB] [--timeout SECONDS] [--max-mb N]\n"
            "       [--remote-slicer PATH] [--progress|--no-progress]\n"
            "       [INVENTORY | NAME=[USER@]HOST[:PORT]:/PATH ...]\n"
            "\n"
            "For each client host, over OpenSSH (BatchMode: keys or an agent, never a\n"
            "password prompt), takes a consistent snapshot of its observe database on the\n"
            "remote side (observe-slicer snapshot; a log directory is loaded into a\n"
            "temporary database first), brings it back, checks it (it is untrusted:\n"
            "integrity, exactly our schema, no triggers) and merges it into DB under the\n"
            "host's name.  Pulling again adds nothing twice.  A host that is down or\n"
            "refuses is reported; the others are still merged.\n"
            "\n"
            "  INVENTORY          a file of client hosts and servers (see\n"
            "                     manager/inventory.example); or hosts on the command line:\n"
            "  NAME=[USER@]HOST[:PORT]:/PATH  PATH ending in .db is a database, otherwise\n"
            "                     a log directory\n"
            "  -j N               hosts pulled at once (default 4)\n"
            "  -F SSH_CONFIG      ssh's configuration file (default: ssh's own)\n"
            "  --db DB            the manager's database (default observe.db)\n"
            "  --timeout SECONDS  per host (default 300)\n"
            "  --max-mb N         the most a host may send; a host that sends more fails\n"
            "                     (default 4096)\n"
            "  --remote-slicer P  observe-slicer on the client hosts (default: on their PATH)\n"
            "  --progress         a progress line on stderr (default when it is a terminal)\n"
            "\n"
            "OBSERVE_SSH names the ssh program (default ssh).  Exit status: 0 every host\n"
            "merged, 1 some failed, 2 usage error.\n",
            mgr_prog);
}

static int cmd_pull(int argc, char **argv)
{
    struct mgr_inventory inv = { 0 };
    struct mgr_pull_opts o = { .jobs = 4, .timeout = 300, .progress = isatty(2), .max_bytes = 4096ll << 20 };
    const char *dbpath = "observe.db";
    char err[1024];
    int status = -1, bad = 0;
    o.ssh = getenv("OBSERVE_SSH") && *getenv("OBSERVE_SSH") ? getenv("OBSERVE_SSH") : "ssh";
    for (int i = 1; i < argc && status < 0; i++) {
        const char *a = argv[i];
        int has_value = !strcmp(a, "-j") || !strcmp(a, "-F") || !strcmp(a, "--db") || !strcmp(a, "--timeout") ||
                        !strcmp(a, "--remote-slicer") || !strcmp(a, "--max-mb");
        if (obs_is_help(a)) {
            pull_usage(stdout);
            status = 0;
        } else if (has_value && i + 1 >= argc) {
            status = obs_usage_error(mgr_prog, pull_usage, "%s needs a value", a);
        } else if (!strcmp(a, "-j")) {
            o.jobs = atoi(argv[++i]);
            if (o.jobs < 1 || o.jobs > 256)
                status = obs_usage_error(mgr_prog, pull_usage, "bad -j '%s' (1 to 256)", argv[i]);
        } else if (!strcmp(a, "--timeout")) {
            o.timeout = atoi(argv[++i]);
            if (o.timeout < 1)
                status = obs_usage_error(mgr_prog, pull_usage, "bad --timeout '%s'", argv[i]);
        } else if (!strcmp(a, "--max-mb")) {
            char *end;
            long long mb = strtoll(argv[++i], &end, 10);
            if (*end || mb < 1 || mb > (1ll << 30))
                status = obs_usage_error(mgr_prog, pull_usage, "bad --max-mb '%s'", argv[i]);
            o.max_bytes = mb << 20;
        } else if (!strcmp(a, "-F")) {
            o.ssh_config = argv[++i];
        } else if (!strcmp(a, "--db")) {
            dbpath = argv[++i];
        } else if (!strcmp(a, "--remote-slicer")) {
            o.remote_slicer = argv[++i];
        } else if (!strcmp(a, "--progress") || !strcmp(a, "--no-progress")) {
            o.progress = a[2] == 'p';
        } else if (a[0] == '-') {
            status = obs_usage_error(mgr_prog, pull_usage, "unknown option '%s'", a);
        } else if (strchr(a, '=') && strstr(a, ":/")) {
            /* a bad host is reported and left out; the others are pulled */
            if (mgr_inventory_add_spec(&inv, a, err, sizeof err) != 0) {
                fprintf(stderr, "%s: %s: left out\n", mgr_prog, err);
                bad++;
            }
        } else {
            int n = mgr_inventory_read(&inv, a, err, sizeof err);
            if (n < 0) {
                fprintf(stderr, "%s: %s\n", mgr_prog, err);
                status = 1;
            }
            bad += n > 0 ? n : 0;
        }
    }
    if (status < 0 && inv.nhosts == 0)
        status = bad ? 1 : obs_usage_error(mgr_prog, pull_usage, "%s", "no client hosts (give an inventory or NAME=HOST:/PATH)");
    if (status >= 0) {
        mgr_inventory_free(&inv);
        return status;
    }
    sqlite3 *db;
    if (obs_db_open(dbpath, OBS_DB_WRITE, &db, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", mgr_prog, err);
        mgr_inventory_free(&inv);
        return 1;
    }
    int rc = mgr_store_servers(db, &inv, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "%s: %s: %s\n", mgr_prog, dbpath, err);
    else
        rc = mgr_pull(db, &inv, &o);
    sqlite3_close(db);
    mgr_inventory_free(&inv);
    return rc == 0 && !bad ? 0 : 1;
}

static void merge_usage(FILE *f)
{
    fprintf(f,
            "usage: %s merge [--db DB] [--progress|--no-progress] NAME=FILE...\n"
            "\n"
            "Merges observe databases that are already here (copied by other means) into\n"
            "DB under the host name NAME, with the same checks as pull: each file is\n"
            "untrusted (integrity, exactly our schema, no triggers).  Merging again adds\n"
            "nothing twice.  A line per host merged on stdout; with --progress (default\n"
            "when stderr is a terminal) a progress line on stderr once it takes over 2 s.\n"
            "Exit status: 0 all merged, 1 some could not be, 2 usage error.\n",
            mgr_prog);
}

/* merge's progress line: on a terminal, once the merge has taken more than
 * 2 s, redrawn at most twice a second from SQLite's progress callback: the
 * host being merged, and the time left at the rate of the bytes so far. */
static struct {
    int on, host, hosts, shown;
    uint64_t bytes_total, bytes_done;
    double started, last;
} merge_progress = { .on = -1 };

static double merge_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int merge_progress_tick(void *unused)
{
    (void)unused;
    double now = merge_now(), took = now - merge_progress.started;
    if (took < 2.0 || now - merge_progress.last < 0.5)
        return 0;
    merge_progress.last = now;
    merge_progress.shown = 1;
    fprintf(stderr, "\r%s: merging host %d of %d, %.0f s", mgr_prog, merge_progress.host, merge_progress.hosts, took);
    if (merge_progress.bytes_done > 0 && merge_progress.bytes_total > merge_progress.bytes_done)
        fprintf(stderr, ", about %.0f s left   ",
                took * (double)(merge_progress.bytes_total - merge_progress.bytes_done) / (double)merge_progress.bytes_done);
    return 0;
}

static void merge_progress_start(int n, char **args, sqlite3 *db)
{
    if (merge_progress.on < 0)
        merge_progress.on = isatty(2);
    if (!merge_progress.on)
        return;
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(args[i], '=');
        struct stat st;
        if (eq && args[i][0] != '-' && stat(eq + 1, &st) == 0) {
            merge_progress.hosts++;
            merge_progress.bytes_total += (uint64_t)st.st_size;
        }
    }
    merge_progress.started = merge_now();
    sqlite3_progress_handler(db, 100000, merge_progress_tick, NULL);
}

static void merge_progress_end(sqlite3 *db)
{
    if (!merge_progress.on)
        return;
    sqlite3_progress_handler(db, 0, NULL, NULL);
    if (merge_progress.shown)
        fprintf(stderr, "\r%s: merged %d hosts in %.1f s%30s\n", mgr_prog, merge_progress.hosts,
                merge_now() - merge_progress.started, "");
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int cmd_merge(int argc, char **argv)
{
    const char *dbpath = "observe.db";
    int first = 1;
    for (int i = 1; i < argc; i++) {
        if (obs_is_help(argv[i])) {
            merge_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--db")) {
            if (i + 1 >= argc)
                return obs_usage_error(mgr_prog, merge_usage, "%s needs a value", argv[i]);
            dbpath = argv[++i];
            first = i + 1;
        } else if (!strcmp(argv[i], "--progress") || !strcmp(argv[i], "--no-progress")) {
            merge_progress.on = argv[i][2] == 'p';
            first = i + 1;
        } else if (argv[i][0] == '-') {
            return obs_usage_error(mgr_prog, merge_usage, "unknown option '%s'", argv[i]);
        } else if (!strchr(argv[i], '=') || argv[i][0] == '=') {
            return obs_usage_error(mgr_prog, merge_usage, "want NAME=FILE, not '%s'", argv[i]);
        }
    }
    if (first >= argc)
        return obs_usage_error(mgr_prog, merge_usage, "%s", "no database to merge");
    char err[1024];
    sqlite3 *db;
    if (obs_db_open(dbpath, OBS_DB_WRITE, &db, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", mgr_prog, err);
        return 1;
    }
    int failed = 0;
    merge_progress_start(argc - first, argv + first, db);
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "--db")) {
            i++;
            continue;
        }
        if (!strcmp(argv[i], "--progress") || !strcmp(argv[i], "--no-progress"))
            continue;
        merge_progress.host++;
        char *name = strndup(argv[i], (size_t)(strchr(argv[i], '=') - argv[i]));
        const char *file = strchr(argv[i], '=') + 1;
        struct mgr_merge_stats st;
        if (!obs_tag_valid(name) || name[0] == '-') {
            fprintf(stderr, "%s: bad host name '%s'\n", mgr_prog, name);
            failed++;
        } else if (same_file(file, dbpath)) {
            fprintf(stderr, "%s: %s: is %s itself, which cannot be merged into itself\n", mgr_prog, file, dbpath);
            failed++;
        } else if (mgr_check_db(file, err, sizeof err) != 0 || mgr_merge(db, file, name, &st, err, sizeof err) != 0) {
            obs_text_clean(err); /* it may quote what the file holds */
            fprintf(stderr, "%s: %s: %s\n", mgr_prog, file, err);
            failed++;
        } else {
            printf("%s: %s: merged %lld records of %lld processes\n", mgr_prog, name, (long long)st.records,
                   (long long)st.runs);
            fflush(stdout);
        }
        struct stat fst;
        merge_progress.bytes_done += stat(file, &fst) == 0 ? (uint64_t)fst.st_size : 0;
        free(name);
    }
    merge_progress_end(db);
    sqlite3_close(db);
    return failed ? 1 : 0;
}

static void plot_usage(FILE *f)
{
    fprintf(f,
            "usage: %s plot|report [--db DB] [-o DIR] [--x-tag KEY]... [--rate-tag KEY] [filters]\n"
            "       (report also [--notes FILE])\n"
            "\n"
            "plot writes into DIR (default observe-plots), each as PNG and SVG:\n"
            "  latency-by-server   median and p99 of T4 and T7 per server host and mechanism\n"
            "  t7-cdf              the distribution of T7 per server\n"
            "  phases              the T1-T6 breakdown (means) per server, stacked\n"
            "  latency-vs-KEY      median T7 against a numeric tag, one line per mechanism\n"
            "  udp-vs-KEY          median datagram response time against it (UDP runs)\n"
            "  reply-rate          replies/s against the request rate tag\n"
            "report also writes DIR/report.html: every plot, the summary tables and\n"
            "which hosts and runs the data came from (a static page, no scripts);\n"
            "--notes FILE puts a text (findings, say) at its top, as text.\n"
            "\n"
            "  --db DB         the database (default observe.db)\n"
            "  -o DIR          output directory (created); yours, writable by no one else\n"
            "  --x-tag KEY     a numeric tag to plot against (default: rate, idle, ports,\n"
            "                  those present)\n"
            "  --rate-tag KEY  the tag holding the request rate (default rate)\n"
            "\n"
            "%s",
            mgr_prog, obs_filter_help);
}

static int cmd_plot(int argc, char **argv, int report)
{
    struct mgr_plot_opts o = { .outdir = "observe-plots", .rate_tag = "rate" };
    const char *dbpath = "observe.db";
    char err[1024];
    int status = -1;
    obs_filter_init(&o.filter);
    for (int i = 1; i < argc && status < 0; i++) {
        const char *a = argv[i];
        int has_value = !strcmp(a, "-o") || !strcmp(a, "--db") || !strcmp(a, "--x-tag") || !strcmp(a, "--rate-tag") ||
                        (report && !strcmp(a, "--notes"));
        int rc;
        if (obs_is_help(a)) {
            plot_usage(stdout);
            status = 0;
        } else if (has_value && i + 1 >= argc) {
            status = obs_usage_error(mgr_prog, plot_usage, "%s needs a value", a);
        } else if (!strcmp(a, "-o")) {
            o.outdir = argv[++i];
        } else if (!strcmp(a, "--db")) {
            dbpath = argv[++i];
        } else if (report && !strcmp(a, "--notes")) {
            o.notes = argv[++i];
        } else if (!strcmp(a, "--x-tag") || !strcmp(a, "--rate-tag")) {
            const char *k = argv[++i];
            if (!obs_tag_valid(k) || strchr(k, '='))
                status = obs_usage_error(mgr_prog, plot_usage, "bad tag key '%s'", k);
            else if (a[2] == 'r')
                o.rate_tag = k;
            else if (o.nxtags == 8)
                status = obs_usage_error(mgr_prog, plot_usage, "%s", "at most 8 --x-tag");
            else
                o.xtags[o.nxtags++] = k;
        } else if ((rc = obs_filter_option(&o.filter, argc, argv, &i, err, sizeof err)) != 0) {
            if (rc < 0)
                status = obs_usage_error(mgr_prog, plot_usage, "%s", err);
        } else {
            status = obs_usage_error(mgr_prog, plot_usage, a[0] == '-' ? "unknown option '%s'" : "unexpected argument '%s'", a);
        }
    }
    if (status >= 0) {
        obs_filter_free(&o.filter);
        return status;
    }
    sqlite3 *db;
    if (obs_db_open(dbpath, OBS_DB_READ, &db, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", mgr_prog, err);
        obs_filter_free(&o.filter);
        return 1;
    }
    struct mgr_plots made = { 0 };
    int rc;
    if ((o.outfd = mgr_open_outdir(o.outdir)) < 0) {
        rc = -1;
    } else {
        rc = report ? mgr_report(db, &o, dbpath) : mgr_plot(db, &o, &made);
        close(o.outfd);
    }
    if (rc == 0 && !report)
        printf("%d plots in %s\n", made.n, o.outdir);
    sqlite3_close(db);
    obs_filter_free(&o.filter);
    return rc == 0 ? 0 : 1;
}

static int cmd_plots(int argc, char **argv) { return cmd_plot(argc, argv, 0); }
static int cmd_report(int argc, char **argv) { return cmd_plot(argc, argv, 1); }

static const struct obs_cmd mgr_cmds[] = {
    { "pull", cmd_pull, "[-j N] [-F SSH_CONFIG] [--db DB] [--timeout S] [--max-mb N] [--remote-slicer PATH]\n"
                        "       [INVENTORY | NAME=[USER@]HOST[:PORT]:/PATH ...]",
      "bring back every client host's database and merge it into DB" },
    { "merge", cmd_merge, "[--db DB] NAME=FILE...", "merge databases that are already here (same checks as pull)" },
    { "plot", cmd_plots, "[--db DB] [-o DIR] [--x-tag KEY]... [--rate-tag KEY] [filters]",
      "latency plots across server hosts, PNG and SVG, with gnuplot" },
    { "report", cmd_report, "[--db DB] [-o DIR] [--notes FILE] [--x-tag KEY]... [--rate-tag KEY] [filters]",
      "DIR/report.html: every plot, the summary tables, the sources" },
    { NULL, NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return obs_cli_main(mgr_prog, mgr_cmds, argc, argv);
}
