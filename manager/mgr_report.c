/* mgr_report.c — report.html: one static page (no scripts, works offline)
 * with every plot, the per-server summary table and where the data came
 * from (pulls and processes).  Everything taken from the database is
 * HTML-escaped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mgr.h"

void mgr_html(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t')
                fprintf(f, "&#%d;", (unsigned char)*s + 0x2400); /* the control picture */
            else
                fputc(*s, f);
        }
    }
}

static void cell(FILE *f, const char *s)
{
    fputs("<td>", f);
    mgr_html(f, s);
    fputs("</td>", f);
}

static void num_cell(FILE *f, const struct obs_stats *s, double v)
{
    if (s->count)
        fprintf(f, "<td class=n>%.3f</td>", v);
    else
        fputs("<td class=n>–</td>", f);
}

static void summary_table(FILE *f, const struct mgr_groups *gs)
{
    fputs("<h2>Per server (client side, ms)</h2>\n<table>\n<tr><th>server<th>mechanism<th>host<th>connections"
          "<th>requests", f);
    for (int k = 1; k <= 7; k++)
        fprintf(f, "<th>T%d median<th>T%d p99", k, k);
    fputs("</tr>\n", f);
    for (int i = 0; i < gs->n; i++) {
        const struct mgr_group *g = &gs->g[i];
        fputs("<tr>", f);
        cell(f, g->label);
        cell(f, g->mechanism);
        cell(f, g->host);
        fprintf(f, "<td class=n>%zu</td>", g->s[6].count > g->s[0].count ? g->s[6].count : g->s[0].count);
        fprintf(f, "<td class=n>%zu</td>", g->s[3].count);
        for (int k = 0; k < 7; k++) {
            num_cell(f, &g->s[k], g->s[k].median);
            num_cell(f, &g->s[k], g->s[k].p99);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<p>Per connection: T1 setup, T6 close delay, T7 transaction time (connect to close). Per "
          "request (each exchange of a keep-alive connection counts): T2 request preparation, T3 request "
          "transmission, T4 response wait (server time and network), T5 response transfer.</p>\n",
          f);
}

/* What the figures leave out: connections with no T7, those closed out at
 * their process's exit, processes whose logs dropped records. */
static void completeness(FILE *f, sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*), total(complete = 0), total(closed_by = 'exit'), "
                           "(SELECT count(*) FROM processes WHERE dropped > 0), "
                           "(SELECT total(dropped) FROM processes) FROM phases",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    if (sqlite3_step(st) == SQLITE_ROW) {
        long total = sqlite3_column_int64(st, 0), open = (long)sqlite3_column_double(st, 1),
             at_exit = (long)sqlite3_column_double(st, 2), procs = sqlite3_column_int64(st, 3);
        if (procs)
            fprintf(f, "<p><strong>Incomplete data:</strong> %ld process%s dropped %.0f records (log full or disk "
                    "full); the figures leave them out.</p>\n", procs, procs == 1 ? "" : "es",
                    sqlite3_column_double(st, 4));
        if (open)
            fprintf(f, "<p>%ld of %ld connections were still open when loaded, or cut short by their process: "
                    "they have no T6 or T7.</p>\n", open, total);
        if (at_exit)
            fprintf(f, "<p>%ld of %ld connections were left open to their process's exit: their T6 and T7 end "
                    "there.</p>\n", at_exit, total);
    }
    sqlite3_finalize(st);
}

/* A table of a query's rows, every value escaped. */
static int query_table(FILE *f, sqlite3 *db, const char *title, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "%s: database error: %s\n", mgr_prog, sqlite3_errmsg(db));
        return -1;
    }
    fprintf(f, "<h2>%s</h2>\n<table>\n<tr>", title);
    for (int c = 0; c < sqlite3_column_count(st); c++) {
        fputs("<th>", f);
        mgr_html(f, sqlite3_column_name(st, c));
    }
    fputs("</tr>\n", f);
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        fputs("<tr>", f);
        for (int c = 0; c < sqlite3_column_count(st); c++)
            cell(f, (const char *)sqlite3_column_text(st, c));
        fputs("</tr>\n", f);
        rows++;
    }
    fputs("</table>\n", f);
    if (!rows)
        fputs("<p>(none)</p>\n", f);
    sqlite3_finalize(st);
    return 0;
}

/* The notes file, shown as preformatted text. */
static int notes(FILE *f, const char *path)
{
    FILE *in = fopen(path, "r");
    if (!in) {
        fprintf(stderr, "%s: %s: %s\n", mgr_prog, path, strerror(errno));
        return -1;
    }
    fputs("<h2>Findings</h2>\n<pre>", f);
    char line[4096];
    while (fgets(line, sizeof line, in))
        mgr_html(f, line);
    fputs("</pre>\n", f);
    fclose(in);
    return 0;
}

int mgr_report(sqlite3 *db, const struct mgr_plot_opts *o, const char *dbpath)
{
    struct mgr_plots made;
    int rc = mgr_plot(db, o, &made);
    if (rc != 0 && made.n == 0)
        fprintf(stderr, "%s: the report will have no plots\n", mgr_prog);
    struct mgr_groups gs;
    if (mgr_server_groups(db, o, &gs) != 0)
        return -1;
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/report.html", o->outdir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlinkat(o->outfd, "report.html.tmp", 0);
    int fd = openat(o->outfd, "report.html.tmp", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", mgr_prog, tmp, strerror(errno));
        mgr_groups_free(&gs);
        return -1;
    }
    char when[64];
    time_t t = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
    fputs("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>observe report</title>\n"
          "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
          "margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}td.n{text-align:right}"
          "figure{margin:2em 0}img{max-width:100%}</style></head><body>\n<h1>observe report</h1>\n<p>",
          f);
    fprintf(f, "Made %s from ", when);
    mgr_html(f, dbpath);
    fputs(". What the clients saw of the servers, measured inside the clients by libobserve.</p>\n", f);
    if (o->notes && notes(f, o->notes) != 0)
        rc = -1;
    summary_table(f, &gs);
    completeness(f, db);
    fputs("<h2>Plots</h2>\n", f);
    for (int i = 0; i < made.n; i++) {
        fprintf(f, "<figure><img src=\"%s.png\" alt=\"", made.plot[i].name);
        mgr_html(f, made.plot[i].title);
        fputs("\"><figcaption>", f);
        mgr_html(f, made.plot[i].title);
        fprintf(f, " (<a href=\"%s.svg\">SVG</a>, <a href=\"%s.dat\">data</a>)</figcaption></figure>\n",
                made.plot[i].name, made.plot[i].name);
    }
    if (!made.n)
        fputs("<p>(no plots: see the manager's messages)</p>\n", f);
    query_table(f, db, "Pulls (where the data came from)",
                "SELECT host, destination, source, finished_at AS \"when\", CASE ok WHEN 1 THEN 'ok' ELSE 'failed' END "
                "AS result, message, runs AS processes, records FROM pulls ORDER BY id DESC LIMIT 200");
    query_table(f, db, "Processes",
                "SELECT p.client_host, p.exe, p.pid, p.start_time, p.tags, "
                "(SELECT count(*) FROM conns c WHERE c.id >= p.run_key << 34 AND c.id < (p.run_key + 1) << 34) AS connections, "
                "p.dropped "
                "FROM processes p ORDER BY p.client_host, p.start_ns LIMIT 2000");
    fputs("</body></html>\n", f);
    mgr_groups_free(&gs);
    if (fclose(f) != 0 || renameat(o->outfd, "report.html.tmp", o->outfd, "report.html") != 0) {
        fprintf(stderr, "%s: %s: %s\n", mgr_prog, path, strerror(errno));
        return -1;
    }
    printf("%s\n", path);
    return rc;
}
