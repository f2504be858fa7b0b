/* mgr_plot.c — the plots, with gnuplot.
 *
 * Data reaches gnuplot only through tab-separated files that this program
 * writes into the output directory; the scripts are fixed text that names
 * those files, run with the output directory as the working directory.  So
 * a label, a tag or a host name is at most a string in a data file (made
 * free of tabs, newlines and quotes), never gnuplot code.  Every plot is
 * written as PNG (pngcairo) and SVG.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mgr.h"

#define MGR_GNUPLOT_SECONDS 300 /* the most one plot may take */
#define MGR_MAX_SERIES 40       /* servers or lines in one plot: more are left out, and said */

/* The length of the valid UTF-8 sequence at s (no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) || (s[0] == 0xf0 && s[1] < 0x90) ||
        (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

/* Labels reach gnuplot's data files and, through it, SVG (XML): valid UTF-8
 * only (anything else becomes '?', never cut in the middle of a character),
 * no control characters, no quotes, and never "]]>", which would end the
 * SVG's character data. */
void mgr_data_label(char *dst, size_t len, const char *s)
{
    size_t o = 0;
    const unsigned char *u = (const unsigned char *)s;
    while (u && *u && o + 1 < len) {
        size_t n = utf8_len(u);
        if (n == 0) {
            dst[o++] = '?';
            u++;
        } else if (n > 1) {
            if (o + n >= len)
                break;
            memcpy(dst + o, u, n);
            o += n;
            u += n;
        } else {
            char c = (char)*u++;
            int ends_cdata = c == '>' && o >= 2 && dst[o - 1] == ']' && dst[o - 2] == ']';
            dst[o++] = (unsigned char)c < 0x20 || c == '"' || c == 0x7f ? '_' : c == '\'' ? '`' : ends_cdata ? ')' : c;
        }
    }
    if (!o && len > 1)
        dst[o++] = '-';
    dst[o] = '\0';
}

/* A query on a view with the user's filters; client side unless --side. */
static sqlite3_stmt *prepare(sqlite3 *db, const struct mgr_plot_opts *o, enum obs_filter_view v, const char *head,
                             const char *tail)
{
    char err[1024];
    int usage;
    const char *extra = o->filter.side < 0 && v != OBS_FV_DATAGRAMS ? " AND side = 'client'" : "";
    sqlite3_stmt *st = obs_filter_prepare(db, &o->filter, v, head, extra, tail, &usage, err, sizeof err);
    if (!st)
        fprintf(stderr, "%s: %s\n", mgr_prog, err);
    return st;
}

static const char *text(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t ? t : "";
}

/* ---- per-server groups ---------------------------------------------------------- */

/* Per-connection phases (T1, T6, T7) from connections, per-request ones
 * (T2-T5) from exchanges, as observe-slicer summary takes them. */
static const char group_conn_select[] =
    "SELECT coalesce(server, peer_addr || ':' || peer_port, '-') AS label, coalesce(mechanism, '') AS mech, "
    "coalesce(server_host, '') AS host, t1_ms, NULL, NULL, NULL, NULL, t6_ms, t7_ms FROM phases";
static const char group_xchg_select[] =
    "SELECT coalesce(server, peer_addr || ':' || peer_port, '-') AS label, coalesce(mechanism, '') AS mech, "
    "coalesce(server_host, '') AS host, NULL, t2_ms, t3_ms, t4_ms, t5_ms, NULL, NULL FROM exchange_phases";

static struct mgr_group *group_of(struct mgr_groups *out, const char *label, const char *mech, const char *host)
{
    for (int i = out->n - 1; i >= 0; i--)
        if (strcmp(out->g[i].label, label) == 0 && strcmp(out->g[i].mechanism, mech) == 0)
            return &out->g[i];
    struct mgr_group *n = realloc(out->g, (size_t)(out->n + 1) * sizeof *n);
    if (!n)
        return NULL;
    out->g = n;
    struct mgr_group *g = &out->g[out->n++];
    memset(g, 0, sizeof *g);
    g->label = strdup(label);
    g->mechanism = strdup(mech);
    g->host = strdup(host);
    return g;
}

static int collect_groups(sqlite3 *db, const struct mgr_plot_opts *o, enum obs_filter_view fv, const char *select,
                          struct mgr_groups *out)
{
    sqlite3_stmt *st = prepare(db, o, fv, select, "ORDER BY label, mech");
    if (!st)
        return -1;
    struct mgr_group *g = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!g || strcmp(g->label, text(st, 0)) != 0 || strcmp(g->mechanism, text(st, 1)) != 0)
            if (!(g = group_of(out, text(st, 0), text(st, 1), text(st, 2))))
                break;
        for (int k = 0; k < 7; k++)
            if (sqlite3_column_type(st, 3 + k) != SQLITE_NULL)
                obs_values_push(&g->t[k], sqlite3_column_double(st, 3 + k));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "%s: database error: %s\n", mgr_prog, sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

static int cmp_group(const void *a, const void *b)
{
    const struct mgr_group *x = a, *y = b;
    int c = strcmp(x->label, y->label);
    return c ? c : strcmp(x->mechanism, y->mechanism);
}

int mgr_server_groups(sqlite3 *db, const struct mgr_plot_opts *o, struct mgr_groups *out)
{
    memset(out, 0, sizeof *out);
    if (collect_groups(db, o, OBS_FV_CONNECTIONS, group_conn_select, out) != 0 ||
        collect_groups(db, o, OBS_FV_EXCHANGES, group_xchg_select, out) != 0)
        return -1;
    if (out->n)
        qsort(out->g, (size_t)out->n, sizeof *out->g, cmp_group);
    for (int i = 0; i < out->n; i++)
        for (int k = 0; k < 7; k++)
            out->g[i].s[k] = obs_stats_of(&out->g[i].t[k]);
    return 0;
}

void mgr_groups_free(struct mgr_groups *gs)
{
    for (int i = 0; i < gs->n; i++) {
        free(gs->g[i].label);
        free(gs->g[i].mechanism);
        free(gs->g[i].host);
        for (int k = 0; k < 7; k++)
            obs_values_free(&gs->g[i].t[k]);
    }
    free(gs->g);
    memset(gs, 0, sizeof *gs);
}

/* "label (mechanism)" for the plots' axes and keys, made safe for gnuplot. */
static void group_name(const struct mgr_group *g, char *buf, size_t len)
{
    char both[600];
    if (g->mechanism[0] && !strstr(g->label, g->mechanism))
        snprintf(both, sizeof both, "%s (%s)", g->label, g->mechanism);
    else
        snprintf(both, sizeof both, "%s", g->label);
    mgr_data_label(buf, len, both);
}

/* ---- files and gnuplot ---------------------------------------------------------- */

int mgr_open_outdir(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: %s: %s\n", mgr_prog, dir, strerror(errno));
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && (errno == ENOTDIR || errno == ELOOP)) {
        /* a symbolic link: followed only if it is ours (what was opened is checked) */
        int lfd = open(dir, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (lfd >= 0 && fstat(lfd, &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid != geteuid()) {
            fprintf(stderr, "%s: %s: a symbolic link owned by uid %u, not by us: not followed\n", mgr_prog, dir,
                    (unsigned)st.st_uid);
            close(lfd);
            return -1;
        }
        if (lfd >= 0)
            close(lfd);
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "%s: %s: %s\n", mgr_prog, dir, strerror(errno));
    } else if (st.st_uid != geteuid()) {
        fprintf(stderr, "%s: %s: owned by uid %u, not by us: refused as the output directory\n", mgr_prog, dir,
                (unsigned)st.st_uid);
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        fprintf(stderr, "%s: %s: others may write into it: refused as the output directory\n", mgr_prog, dir);
    } else {
        return fd;
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

static FILE *open_out(const struct mgr_plot_opts *o, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", o->outdir, name);
    int fd = openat(o->outfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f)
        fprintf(stderr, "%s: %s: %s\n", mgr_prog, path, strerror(errno));
    return f;
}

static const char gp_preamble[] =
    "set datafile separator \"\\t\"\n"
    "set termoption noenhanced\n"
    "set grid ytics\n"
    "set key outside right top\n";

/* Runs gnuplot on NAME.gp in the output directory (it writes NAME.png and
 * NAME.svg) and checks that both exist. */
static int run_gnuplot(const struct mgr_plot_opts *o, const char *name)
{
    char script[128], log[128];
    snprintf(script, sizeof script, "%s.gp", name);
    snprintf(log, sizeof log, "%s.gnuplot-errors", name);
    pid_t pid = fork();
    if (pid == 0) {
        if (fchdir(o->outfd) != 0)
            _exit(126);
        alarm(MGR_GNUPLOT_SECONDS); /* survives exec: a plot that takes longer is killed */
        int null = open("/dev/null", O_RDWR), err = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
        dup2(null, 0);
        dup2(null, 1);
        dup2(err >= 0 ? err : null, 2);
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char why[64] = "";
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            snprintf(why, sizeof why, ": is gnuplot installed?");
        else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
            snprintf(why, sizeof why, ": it took longer than %d s", MGR_GNUPLOT_SECONDS);
        fprintf(stderr, "%s: gnuplot failed on %s/%s%s (see %s/%s)\n", mgr_prog, o->outdir, script, why, o->outdir,
                log);
        return -1;
    }
    unlinkat(o->outfd, log, 0);
    for (int i = 0; i < 2; i++) {
        struct stat st;
        char file[128];
        snprintf(file, sizeof file, "%s.%s", name, i ? "svg" : "png");
        if (fstatat(o->outfd, file, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
            fprintf(stderr, "%s: gnuplot wrote no %s/%s\n", mgr_prog, o->outdir, file);
            return -1;
        }
    }
    return 0;
}

/* Writes NAME.gp: the preamble, the plot's own lines, once for PNG and once
 * for SVG. */
static int write_script(const struct mgr_plot_opts *o, const char *name, const char *body)
{
    char file[128];
    snprintf(file, sizeof file, "%s.gp", name);
    FILE *f = open_out(o, file);
    if (!f)
        return -1;
    fprintf(f,
            "# written by observe-manager: %s.png and %s.svg from %s.dat\n%s"
            "set terminal pngcairo size 1100,650 noenhanced font \",10\"\nset output '%s.png'\n%s"
            "set terminal svg size 1100,650 noenhanced font \"sans,11\"\nset output '%s.svg'\nreplot\nset output\n",
            name, name, name, gp_preamble, name, body, name);
    return fclose(f) == 0 ? 0 : -1;
}

static int made_plot(struct mgr_plots *made, const char *name, const char *title)
{
    if (made->n == (int)(sizeof made->plot / sizeof *made->plot))
        return 0;
    snprintf(made->plot[made->n].name, sizeof made->plot[0].name, "%s", name);
    snprintf(made->plot[made->n].title, sizeof made->plot[0].title, "%s", title);
    made->n++;
    return 0;
}

static int plot_from(const struct mgr_plot_opts *o, struct mgr_plots *made, const char *name, const char *title,
                     const char *body)
{
    if (write_script(o, name, body) != 0 || run_gnuplot(o, name) != 0)
        return -1;
    return made_plot(made, name, title);
}

/* ---- the per-server plots ------------------------------------------------------ */

static int plot_servers(const struct mgr_plot_opts *o, const struct mgr_groups *gs, struct mgr_plots *made)
{
    FILE *lat = open_out(o, "latency-by-server.dat"), *ph = open_out(o, "phases.dat"), *cdf = open_out(o, "t7-cdf.dat");
    if (!lat || !ph || !cdf) {
        if (lat) fclose(lat);
        if (ph) fclose(ph);
        if (cdf) fclose(cdf);
        return -1;
    }
    fprintf(lat, "server\tT4 median\tT4 p99\tT7 median\tT7 p99\n");
    fprintf(ph, "server\tT1\tT2\tT3\tT4\tT5\tT6\n");
    int blocks = 0;
    for (int i = 0; i < gs->n && i < MGR_MAX_SERIES; i++) {
        const struct mgr_group *g = &gs->g[i];
        char name[600];
        group_name(g, name, sizeof name);
        fprintf(lat, "%s\t%.6f\t%.6f\t%.6f\t%.6f\n", name, g->s[3].median, g->s[3].p99, g->s[6].median, g->s[6].p99);
        fprintf(ph, "%s", name);
        for (int k = 0; k < 6; k++)
            fprintf(ph, "\t%.6f", g->s[k].count ? g->s[k].mean : 0.0);
        fputc('\n', ph);
        const struct obs_values *v = &g->t[6]; /* sorted by obs_stats_of */
        if (!v->n)
            continue;
        fprintf(cdf, "%s%s\tfraction\n", blocks ? "\n\n" : "", name);
        size_t step = v->n > 400 ? v->n / 400 : 1;
        for (size_t j = 0; j < v->n; j += step)
            fprintf(cdf, "%.6f\t%.6f\n", v->v[j], (double)(j + 1) / (double)v->n);
        fprintf(cdf, "%.6f\t1\n", v->v[v->n - 1]);
        blocks++;
    }
    int rc = (fclose(lat) | fclose(ph) | fclose(cdf)) ? -1 : 0;
    if (gs->n > MGR_MAX_SERIES)
        fprintf(stderr, "%s: %d servers: the per-server plots show the first %d by label (narrow them with filters)\n",
                mgr_prog, gs->n, MGR_MAX_SERIES);
    char body[1024];
    rc |= plot_from(o, made, "latency-by-server",
                    "Median and p99 of T4 (response wait, per request) and T7 (transaction, per connection) per server",
                    "set title 'T4 per request and T7 per connection, per server host and mechanism'\nset ylabel 'ms'\n"
                    "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
                    "set xtics rotate by -20\nset yrange [0:*]\n"
                    "plot 'latency-by-server.dat' using 2:xtic(1) title columnheader(2), '' using 3 title columnheader(3), "
                    "'' using 4 title columnheader(4), '' using 5 title columnheader(5)\n");
    rc |= plot_from(o, made, "phases", "T1-T6 per server (means, stacked: T1, T6 per connection; T2-T5 per request)",
                    "set title 'Where the time goes: T1-T6 per server (means; T1, T6 per connection, T2-T5 per request)'\n"
                    "set ylabel 'ms'\n"
                    "set style data histograms\nset style histogram rowstacked\nset style fill solid 0.8 border -1\n"
                    "set xtics rotate by -20\nset yrange [0:*]\n"
                    "plot 'phases.dat' using 2:xtic(1) title columnheader(2), for [i=3:7] '' using i title columnheader(i)\n");
    if (blocks) {
        snprintf(body, sizeof body,
                 "set title 'Distribution of T7 (transaction time) per server'\nset xlabel 'T7, ms'\n"
                 "set ylabel 'fraction of connections'\nset yrange [0:1]\nset key right bottom inside\n"
                 "plot for [i=0:%d] 't7-cdf.dat' index i using 1:2 with steps linewidth 2 title columnheader(1)\n",
                 blocks - 1);
        rc |= plot_from(o, made, "t7-cdf", "Distribution (CDF) of T7 per server", body);
    }
    return rc ? -1 : 0;
}

/* ---- against a numeric tag ---------------------------------------------------- */

static int numeric(const char *s, double *v)
{
    char *end;
    if (!s || !*s)
        return 0;
    *v = strtod(s, &end);
    return *end == '\0' && isfinite(*v);
}

/* One point of a line: a series (mechanism or server) at x. */
struct point {
    char *series;
    double x;
    struct obs_values y;
};

static int cmp_point(const void *a, const void *b)
{
    const struct point *p = a, *q = b;
    int c = strcmp(p->series, q->series);
    return c ? c : (p->x > q->x) - (p->x < q->x);
}

struct points {
    struct point *p;
    int n;
};

static struct point *point_at(struct points *ps, const char *series, double x)
{
    for (int i = 0; i < ps->n; i++)
        if (ps->p[i].x == x && strcmp(ps->p[i].series, series) == 0)
            return &ps->p[i];
    struct point *n = realloc(ps->p, (size_t)(ps->n + 1) * sizeof *n);
    if (!n)
        return NULL;
    ps->p = n;
    ps->p[ps->n] = (struct point){ strdup(series), x, { 0 } };
    return &ps->p[ps->n++];
}

static void points_free(struct points *ps)
{
    for (int i = 0; i < ps->n; i++) {
        free(ps->p[i].series);
        obs_values_free(&ps->p[i].y);
    }
    free(ps->p);
    memset(ps, 0, sizeof *ps);
}

/* Writes the points as one block per series (median and p99): the number
 * of blocks, or -1. */
static int write_series(const struct mgr_plot_opts *o, const char *file, struct points *ps, const char *xname)
{
    qsort(ps->p, (size_t)ps->n, sizeof *ps->p, cmp_point);
    FILE *f = open_out(o, file);
    if (!f)
        return -1;
    int blocks = 0;
    for (int i = 0; i < ps->n; i++) {
        if (i == 0 || strcmp(ps->p[i].series, ps->p[i - 1].series) != 0) {
            if (blocks == MGR_MAX_SERIES) {
                fprintf(stderr, "%s: %s: the plot shows the first %d lines by name (narrow them with filters)\n",
                        mgr_prog, file, MGR_MAX_SERIES);
                break;
            }
            char name[600];
            mgr_data_label(name, sizeof name, ps->p[i].series);
            fprintf(f, "%s%s\t%s\tp99\n", blocks ? "\n\n" : "", xname, name);
            blocks++;
        }
        struct obs_stats s = obs_stats_of(&ps->p[i].y);
        fprintf(f, "%g\t%.6f\t%.6f\n", ps->p[i].x, s.median, s.p99);
    }
    return fclose(f) == 0 ? blocks : -1;
}

/* Lines of median and p99 per series; latencies on a log scale, where the
 * medians and a p99 ten times larger both stay readable. */
static int plot_lines(const struct mgr_plot_opts *o, struct mgr_plots *made, const char *name, const char *title,
                      const char *ylabel, struct points *ps, const char *xname, int log_y)
{
    char file[128], body[2048], safe_x[80];
    snprintf(file, sizeof file, "%s.dat", name);
    int blocks = write_series(o, file, ps, xname);
    if (blocks <= 0)
        return blocks;
    mgr_data_label(safe_x, sizeof safe_x, xname); /* a tag key: [A-Za-z0-9_.:-] already */
    snprintf(body, sizeof body,
             "set title '%s'\nset xlabel '%s'\nset ylabel '%s'\n%s\n"
             "plot for [i=0:%d] '%s' index i using 1:2 with linespoints linewidth 2 linecolor i+1 title columnheader(2), "
             "for [i=0:%d] '%s' index i using 1:3 with lines dashtype 2 linewidth 1 linecolor i+1 notitle\n",
             title, safe_x, ylabel, log_y ? "set logscale y\nset mytics 10\nset grid mytics" : "set yrange [0:*]",
             blocks - 1, file, blocks - 1, file);
    return plot_from(o, made, name, title, body);
}

/* Median T7 (connections) and datagram response time against a tag. */
static int plot_against(sqlite3 *db, const struct mgr_plot_opts *o, struct mgr_plots *made, const char *key)
{
    static const struct {
        enum obs_filter_view v;
        const char *select, *prefix, *title, *ylabel;
    } kinds[] = {
        { OBS_FV_CONNECTIONS,
          "SELECT coalesce(mechanism, server, peer_addr), (SELECT value FROM tags t WHERE t.run = phases.run AND t.key = :key), "
          "t7_ms FROM phases",
          "latency-vs-", "T7 (transaction time) against %s, one line per mechanism", "T7, ms, log scale (median; dashed: p99)" },
        { OBS_FV_DATAGRAMS,
          "SELECT coalesce(mechanism, server, peer_addr), (SELECT value FROM tags t WHERE t.run = datagram_phases.run "
          "AND t.key = :key), response_ms FROM datagram_phases",
          "udp-vs-", "UDP response time against %s, one line per mechanism", "response time, ms, log scale (median; dashed: p99)" },
    };
    int rc = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        if (kinds[k].v == OBS_FV_DATAGRAMS && o->filter.side >= 0)
            continue; /* datagrams have no side */
        sqlite3_stmt *st = prepare(db, o, kinds[k].v, kinds[k].select, "");
        if (!st)
            return -1;
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":key"), key, -1, SQLITE_STATIC);
        struct points ps = { 0 };
        while (sqlite3_step(st) == SQLITE_ROW) {
            double x;
            if (sqlite3_column_type(st, 2) == SQLITE_NULL || !numeric((const char *)sqlite3_column_text(st, 1), &x))
                continue;
            struct point *p = point_at(&ps, text(st, 0), x);
            if (p)
                obs_values_push(&p->y, sqlite3_column_double(st, 2));
        }
        sqlite3_finalize(st);
        char name[80], title[200];
        snprintf(name, sizeof name, "%s%s", kinds[k].prefix, key);
        snprintf(title, sizeof title, kinds[k].title, key);
        if (ps.n)
            rc |= plot_lines(o, made, name, title, kinds[k].ylabel, &ps, key, 1) < 0;
        points_free(&ps);
    }
    return rc ? -1 : 0;
}

/* Replies per second against the request rate, per mechanism: each run's
 * replies over the span from its first connect to its last response. */
static int plot_reply_rate(sqlite3 *db, const struct mgr_plot_opts *o, struct mgr_plots *made)
{
    sqlite3_stmt *st = prepare(db, o, OBS_FV_CONNECTIONS,
                               "SELECT coalesce(mechanism, server, peer_addr) AS series, "
                               "(SELECT value FROM tags t WHERE t.run = phases.run AND t.key = :key), "
                               "min(t_connect), max(t_resp_last), sum(coalesce(x.replies, 0)) FROM phases "
                               "LEFT JOIN (SELECT conn, count(d_resp_first) AS replies FROM xchgs GROUP BY conn) x "
                               "ON x.conn = phases.conn_id",
                               "GROUP BY series, phases.run");
    if (!st)
        return -1;
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":key"), o->rate_tag, -1, SQLITE_STATIC);
    struct points ps = { 0 };
    while (sqlite3_step(st) == SQLITE_ROW) {
        double x, span = (sqlite3_column_double(st, 3) - sqlite3_column_double(st, 2)) / 1e9;
        if (!numeric((const char *)sqlite3_column_text(st, 1), &x) || span <= 0)
            continue;
        struct point *p = point_at(&ps, text(st, 0), x);
        if (p)
            obs_values_push(&p->y, sqlite3_column_double(st, 4) / span);
    }
    sqlite3_finalize(st);
    int rc = 0;
    if (ps.n) {
        char title[200];
        snprintf(title, sizeof title, "Reply rate against request rate (tag %s), one line per mechanism", o->rate_tag);
        rc = plot_lines(o, made, "reply-rate", title, "replies/s (median of runs; dashed: p99)", &ps, o->rate_tag, 0) < 0;
    }
    points_free(&ps);
    return rc ? -1 : 0;
}

/* Does any run carry this tag with a numeric value? */
static int tag_present(sqlite3 *db, const char *key)
{
    sqlite3_stmt *st;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT value FROM tags WHERE key = ?", -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    double v;
    while (!found && sqlite3_step(st) == SQLITE_ROW)
        found = numeric(text(st, 0), &v);
    sqlite3_finalize(st);
    return found;
}

int mgr_plot(sqlite3 *db, const struct mgr_plot_opts *o, struct mgr_plots *made)
{
    struct mgr_groups gs;
    memset(made, 0, sizeof *made);
    if (mgr_server_groups(db, o, &gs) != 0)
        return -1;
    int rc = 0;
    if (gs.n > 0)
        rc |= plot_servers(o, &gs, made);
    mgr_groups_free(&gs);
    static const char *const defaults[] = { "rate", "idle", "ports" };
    const char *const *keys = o->nxtags ? o->xtags : defaults;
    int nkeys = o->nxtags ? o->nxtags : 3;
    for (int i = 0; i < nkeys; i++)
        if (o->nxtags || tag_present(db, keys[i]))
            rc |= plot_against(db, o, made, keys[i]);
    if (tag_present(db, o->rate_tag))
        rc |= plot_reply_rate(db, o, made);
    if (made->n == 0 && rc == 0) {
        fprintf(stderr, "%s: nothing to plot: no connections or datagrams match\n", mgr_prog);
        return -1;
    }
    return rc ? -1 : 0;
}
