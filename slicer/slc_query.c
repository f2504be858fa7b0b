/* slc_query.c — the commands that read the database and print: summary
 * (percentiles of T1–T7 per group) and export (a view's rows as CSV or
 * JSON).  Filters become bound parameters (obs_filter.c); text from the
 * database is escaped for the output format, never interpreted.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/obs_stats.h"
#include "slc.h"

/* ---- output escaping ---------------------------------------------------------- */

static void csv_text(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n") && s[0] != ' ' && (!*s || s[strlen(s) - 1] != ' ')) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

/* Length of the valid UTF-8 sequence at s, or 0. */
static int utf8_len(const unsigned char *s)
{
    int n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 2 && s[0] < 0xC2)
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD. */
static void json_text(FILE *out, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    fputc('"', out);
    while (*s) {
        int n = utf8_len(s);
        if (n == 0) {
            fputs("\\ufffd", out);
            s++;
        } else if (*s == '"' || *s == '\\') {
            fprintf(out, "\\%c", *s++);
        } else if (*s < 0x20) {
            fprintf(out, "\\u%04x", *s++);
        } else {
            fwrite(s, 1, (size_t)n, out);
            s += n;
        }
    }
    fputc('"', out);
}

static void print_value(FILE *out, sqlite3_stmt *st, int col, enum slc_format fmt)
{
    int type = sqlite3_column_type(st, col);
    const char *text = (const char *)sqlite3_column_text(st, col);
    if (type == SQLITE_NULL || !text) {
        if (fmt == SLC_JSON)
            fputs("null", out);
        return;
    }
    if (type == SQLITE_FLOAT) {
        double v = sqlite3_column_double(st, col);
        if (isfinite(v))
            fprintf(out, "%.6f", v);
        else if (fmt == SLC_JSON)
            fputs("null", out);
        return;
    }
    if (type == SQLITE_INTEGER)
        fputs(text, out);
    else if (fmt == SLC_JSON)
        json_text(out, text);
    else
        csv_text(out, text);
}

/* ---- export ---------------------------------------------------------------------- */

struct slc_view {
    const char *what, *view, *order;
    enum obs_filter_view fv;
};

static const struct slc_view slc_views[] = {
    { "connections", "phases", "conn_id", OBS_FV_CONNECTIONS },
    { "exchanges", "exchange_phases", "xchg_id", OBS_FV_EXCHANGES },
    { "datagrams", "datagram_phases", "dgram_id", OBS_FV_DATAGRAMS },
    { "waits", "event_waits", "run, mechanism", OBS_FV_WAITS },
    { NULL, NULL, NULL, 0 },
};

static sqlite3_stmt *slc_prepare_filtered(sqlite3 *db, const struct obs_filter *f, enum obs_filter_view fv,
                                          const char *select, const char *tail)
{
    char err[1024];
    int usage;
    sqlite3_stmt *st = obs_filter_prepare(db, f, fv, select, "", tail, &usage, err, sizeof err);
    if (!st)
        fprintf(stderr, "%s: %s\n", slc_prog, err);
    return st;
}

int slc_export(sqlite3 *db, const struct obs_filter *f, const char *what, enum slc_format fmt, FILE *out)
{
    const struct slc_view *v = slc_views;
    while (v->what && strcmp(v->what, what) != 0)
        v++;
    if (!v->what) {
        fprintf(stderr, "%s export: unknown --what '%s' (connections, exchanges, datagrams, waits)\n", slc_prog,
                what);
        return -2;
    }
    char check[4096] = "", err[256];
    if (obs_filter_sql(f, v->fv, check, sizeof check, err, sizeof err) != 0) {
        fprintf(stderr, "%s export: %s\n", slc_prog, err);
        return -2;
    }
    char select[128], tail[128];
    snprintf(select, sizeof select, "SELECT * FROM %s", v->view);
    snprintf(tail, sizeof tail, "ORDER BY %s", v->order);
    sqlite3_stmt *st = slc_prepare_filtered(db, f, v->fv, select, tail);
    if (!st)
        return -1;
    int ncol = sqlite3_column_count(st), rc, rows = 0;
    if (fmt == SLC_CSV) {
        for (int c = 0; c < ncol; c++)
            fprintf(out, "%s%s", c ? "," : "", sqlite3_column_name(st, c));
        fputc('\n', out);
    } else {
        fputs("[", out);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (fmt == SLC_JSON)
            fputs(rows ? ",\n{" : "\n{", out);
        for (int c = 0; c < ncol; c++) {
            if (c)
                fputc(',', out);
            if (fmt == SLC_JSON) {
                json_text(out, sqlite3_column_name(st, c));
                fputc(':', out);
            }
            print_value(out, st, c, fmt);
        }
        fputs(fmt == SLC_JSON ? "}" : "\n", out);
        rows++;
    }
    if (fmt == SLC_JSON)
        fputs(rows ? "\n]\n" : "]\n", out);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "%s: database error: %s\n", slc_prog, sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/* ---- summary -----------------------------------------------------------------------
 * Per-connection phases (T1, T6, T7) are summarised over connections, from
 * `phases`; per-request phases (T2-T5) over exchanges, from
 * `exchange_phases`, so a keep-alive connection's requests count one by
 * one.  Each row says which ("per"). */

const struct slc_scope slc_scopes[SLC_NSCOPES] = {
    { "connection", "phases", OBS_FV_CONNECTIONS, { 1, 6, 7 }, 3 },
    { "request", "exchange_phases", OBS_FV_EXCHANGES, { 2, 3, 4, 5 }, 4 },
};

/* One output row: a group and one phase. */
struct slc_row {
    char *group;
    int phase;
    const char *per;
    struct obs_stats s;
};

struct slc_rows {
    struct slc_row *row;
    size_t n, cap;
};

static int add_row(struct slc_rows *rows, const char *group, int phase, const char *per, struct obs_values *vals)
{
    if (rows->n == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 64;
        struct slc_row *r = realloc(rows->row, cap * sizeof *r);
        if (!r)
            return -1;
        rows->row = r;
        rows->cap = cap;
    }
    char *g = strdup(group);
    if (!g)
        return -1;
    rows->row[rows->n++] = (struct slc_row){ g, phase, per, obs_stats_of(vals) };
    vals->n = 0;
    return 0;
}

static int row_order(const void *a, const void *b)
{
    const struct slc_row *x = a, *y = b;
    int c = strcmp(x->group, y->group);
    return c ? c : x->phase - y->phase;
}

static void print_stat(FILE *out, const struct slc_row *r, double v, enum slc_format fmt, int width)
{
    if (fmt == SLC_TABLE) {
        if (r->s.count)
            fprintf(out, " %*.3f", width, v);
        else
            fprintf(out, " %*s", width, "-");
    } else if (r->s.count) {
        fprintf(out, "%s%.6f", fmt == SLC_CSV ? "," : "", v);
    } else {
        fputs(fmt == SLC_CSV ? "," : "null", out);
    }
}

static void print_rows(FILE *out, const struct slc_rows *rows, const char *by, enum slc_format fmt)
{
    static const char *const names[] = { "count", "min", "median", "p90", "p99", "max", "mean" };
    size_t gw = strlen(by);
    for (size_t i = 0; i < rows->n; i++)
        if (strlen(rows->row[i].group) > gw)
            gw = strlen(rows->row[i].group);
    if (fmt == SLC_TABLE) {
        fprintf(out, "%-*s %-5s %-10s %8s", (int)gw, by, "phase", "per", "count");
        for (int k = 1; k < 7; k++)
            fprintf(out, " %7s_ms", names[k]);
        fputc('\n', out);
    } else if (fmt == SLC_CSV) {
        csv_text(out, by);
        fputs(",phase,per,count,min_ms,median_ms,p90_ms,p99_ms,max_ms,mean_ms\n", out);
    } else {
        fputs("[", out);
    }
    for (size_t i = 0; i < rows->n; i++) {
        const struct slc_row *r = &rows->row[i];
        const double v[] = { r->s.min, r->s.median, r->s.p90, r->s.p99, r->s.max, r->s.mean };
        if (fmt == SLC_TABLE) {
            fprintf(out, "%-*s T%-4d %-10s %8zu", (int)gw, r->group, r->phase, r->per, r->s.count);
        } else if (fmt == SLC_CSV) {
            csv_text(out, r->group);
            fprintf(out, ",T%d,%s,%zu", r->phase, r->per, r->s.count);
        } else {
            fputs(i ? ",\n{\"group\":" : "\n{\"group\":", out);
            json_text(out, r->group);
            fprintf(out, ",\"by\":");
            json_text(out, by);
            fprintf(out, ",\"phase\":\"T%d\",\"per\":\"%s\",\"count\":%zu", r->phase, r->per, r->s.count);
        }
        for (int k = 0; k < 6; k++) {
            if (fmt == SLC_JSON)
                fprintf(out, ",\"%s_ms\":", names[k + 1]);
            print_stat(out, r, v[k], fmt, 10);
        }
        fputs(fmt == SLC_JSON ? "}" : "\n", out);
    }
    if (fmt == SLC_JSON)
        fputs(rows->n ? "\n]\n" : "]\n", out);
}

/* The grouping expression of --by, over a view with the columns of phases. */
static const char *group_expr(const char *by, const char *view, char *buf, size_t len)
{
    if (strcmp(by, "server") == 0)
        return "coalesce(server, peer_addr || ':' || peer_port, '-')";
    if (strcmp(by, "peer") == 0)
        return "coalesce(peer_addr || ':' || peer_port, '-')";
    if (strcmp(by, "exe") == 0)
        return "exe";
    if (strcmp(by, "reuse") == 0) /* requests: first or reused; connections: used once or more */
        return strcmp(view, "exchange_phases") == 0 ? "CASE WHEN reused THEN 'reused' ELSE 'first' END"
                                                    : "CASE WHEN exchanges > 1 THEN 'reused' ELSE 'first' END";
    if (strncmp(by, "tag:", 4) == 0 && obs_tag_valid(by + 4) && !strchr(by + 4, '=')) {
        snprintf(buf, len, "coalesce((SELECT value FROM tags t WHERE t.run = %s.run AND t.key = :by_key), '-')", view);
        return buf;
    }
    return NULL;
}

/* The rows of one scope: its phases per group. */
static int summarise_scope(sqlite3 *db, const struct obs_filter *f, const struct slc_scope *sc, const char *by,
                           struct slc_rows *rows)
{
    char ebuf[256], select[768];
    int n = snprintf(select, sizeof select, "SELECT %s AS grp", group_expr(by, sc->view, ebuf, sizeof ebuf));
    for (int p = 0; p < sc->nphases; p++)
        n += snprintf(select + n, sizeof select - (size_t)n, ", t%d_ms", sc->phases[p]);
    snprintf(select + n, sizeof select - (size_t)n, " FROM %s", sc->view);
    sqlite3_stmt *st = slc_prepare_filtered(db, f, sc->fv, select, "ORDER BY grp");
    if (!st)
        return -1;
    int k = sqlite3_bind_parameter_index(st, ":by_key");
    if (k)
        sqlite3_bind_text(st, k, by + 4, -1, SQLITE_STATIC);
    struct obs_values vals[4] = { 0 };
    char *group = NULL;
    int rc, status = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && status == 0) {
        const char *g = (const char *)sqlite3_column_text(st, 0);
        g = g ? g : "-";
        if (group && strcmp(group, g) != 0) {
            for (int p = 0; p < sc->nphases && status == 0; p++)
                status = add_row(rows, group, sc->phases[p], sc->per, &vals[p]);
            free(group);
            group = NULL;
        }
        if (!group && !(group = strdup(g)))
            status = -1;
        for (int p = 0; p < sc->nphases && status == 0; p++)
            if (sqlite3_column_type(st, p + 1) != SQLITE_NULL)
                status = obs_values_push(&vals[p], sqlite3_column_double(st, p + 1));
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "%s: database error: %s\n", slc_prog, sqlite3_errmsg(db));
        status = -1;
    } else if (status != 0) {
        fprintf(stderr, "%s: out of memory\n", slc_prog);
    } else if (group) {
        for (int p = 0; p < sc->nphases && status == 0; p++)
            status = add_row(rows, group, sc->phases[p], sc->per, &vals[p]);
    }
    sqlite3_finalize(st);
    free(group);
    for (int p = 0; p < 4; p++)
        obs_values_free(&vals[p]);
    return status;
}

/* What the figures leave out, on stderr: connections with no T7 (open, or
 * their process died), those closed out at exit, and processes whose log
 * dropped records. */
static int summary_notes(sqlite3 *db, const struct obs_filter *f)
{
    sqlite3_stmt *st = slc_prepare_filtered(
        db, f, OBS_FV_CONNECTIONS,
        "SELECT count(*), total(complete = 0), total(closed_by = 'exit'), "
        "(SELECT count(*) FROM processes p WHERE p.dropped > 0 AND p.run IN (SELECT run FROM phases)), "
        "(SELECT total(dropped) FROM processes p WHERE p.dropped > 0 AND p.run IN (SELECT run FROM phases)) "
        "FROM phases", "");
    if (!st)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        long total = sqlite3_column_int64(st, 0), open = (long)sqlite3_column_double(st, 1),
             at_exit = (long)sqlite3_column_double(st, 2), procs = sqlite3_column_int64(st, 3);
        double dropped = sqlite3_column_double(st, 4);
        if (open)
            fprintf(stderr, "%s: note: %ld of %ld connections were still open when loaded or cut short by their "
                    "process (no T6, T7)\n", slc_prog, open, total);
        if (at_exit)
            fprintf(stderr, "%s: note: %ld of %ld connections were left open to the process's exit (T6, T7 end "
                    "there)\n", slc_prog, at_exit, total);
        if (procs)
            fprintf(stderr, "%s: note: incomplete: %ld process%s dropped %.0f records (log full or disk full)\n",
                    slc_prog, procs, procs == 1 ? "" : "es", dropped);
    }
    sqlite3_finalize(st);
    return 0;
}

int slc_summary(sqlite3 *db, const struct obs_filter *f, const char *by, enum slc_format fmt, FILE *out)
{
    char ebuf[256];
    if (!group_expr(by, "phases", ebuf, sizeof ebuf)) {
        fprintf(stderr, "%s summary: bad --by '%s' (server, peer, exe, reuse or tag:KEY)\n", slc_prog, by);
        return -2;
    }
    struct slc_rows rows = { 0 };
    int status = 0;
    for (size_t i = 0; i < SLC_NSCOPES && status == 0; i++)
        status = summarise_scope(db, f, &slc_scopes[i], by, &rows);
    if (status == 0) {
        qsort(rows.row, rows.n, sizeof rows.row[0], row_order);
        print_rows(out, &rows, by, fmt);
        status = summary_notes(db, f);
    }
    for (size_t i = 0; i < rows.n; i++)
        free(rows.row[i].group);
    free(rows.row);
    return status;
}
