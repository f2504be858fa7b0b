/* slc_metrics.c — observe-slicer export --format openmetrics: the phases as
 * Prometheus histograms, for node_exporter's textfile collector or a push to
 * a Pushgateway.
 *
 * One histogram family per phase, observe_tN_seconds, with a series per
 * server, client host and set of tags: cumulative buckets, count and sum, in
 * seconds.  T1, T6 and T7 count connections (the phases view), T2-T5
 * requests (exchange_phases), as summary does.  Labels: server (its label,
 * else address:port), client_host, and each tag as tag_KEY (the key made a
 * Prometheus label name).  Values are escaped and made valid UTF-8: a hostile
 * tag stays a label value, never a new series name or line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slc.h"

static const double slc_buckets[] = { 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                      0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10 };
#define SLC_NBUCKETS (int)(sizeof slc_buckets / sizeof slc_buckets[0])

/* A phase's help text: the first words of its period's doc in the format
 * header ("T4 response wait: server time + network (first exchange)"
 * gives "T4 response wait: server time + network"). */
#define SLC_X_PERIOD_DOC(name, from, to, doc) #name, doc,
static const char *const slc_period_docs[] = { OBS_CONN_PERIODS(SLC_X_PERIOD_DOC) NULL };

static void print_help(FILE *out, int phase, const char *per)
{
    char name[16];
    snprintf(name, sizeof name, "t%d_ms", phase);
    for (int i = 0; slc_period_docs[i]; i += 2)
        if (strcmp(slc_period_docs[i], name) == 0) {
            const char *doc = slc_period_docs[i + 1];
            int len = (int)strcspn(doc, ",(");
            while (len > 0 && doc[len - 1] == ' ')
                len--;
            fprintf(out, "# HELP observe_t%d_seconds %.*s, per %s, seen by the client (observe)\n", phase, len, doc,
                    per);
            return;
        }
}

struct slc_series {
    char *labels;                         /* the label set, rendered */
    uint64_t buckets[8][SLC_NBUCKETS + 1]; /* per phase; the last is +Inf */
    double sum[8];
};

struct slc_family_set {
    struct slc_series *s;
    size_t n, cap;
};

/* A label value: \\, \" and \n escaped, bytes that are not UTF-8 replaced. */
static void put_value(char **p, const unsigned char *v)
{
    while (*v) {
        unsigned char c = *v;
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        for (int i = 1; i < len; i++)
            if ((v[i] & 0xC0) != 0x80)
                len = 0;
        if (c == '\\' || c == '"') {
            *(*p)++ = '\\';
            *(*p)++ = (char)c;
        } else if (c == '\n') {
            *(*p)++ = '\\';
            *(*p)++ = 'n';
        } else if (len == 0) {
            memcpy(*p, "\xEF\xBF\xBD", 3); /* U+FFFD */
            *p += 3;
            len = 1;
        } else {
            memcpy(*p, v, (size_t)len);
            *p += len;
        }
        v += len > 0 ? len : 1;
    }
}

/* label="value" appended at *p; the name is made of [a-zA-Z0-9_]. */
static void put_label(char **p, const char *name, size_t name_len, const char *value, int first)
{
    if (!first)
        *(*p)++ = ',';
    for (size_t i = 0; i < name_len; i++) {
        char c = name[i];
        *(*p)++ = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ? c : '_';
    }
    *(*p)++ = '=';
    *(*p)++ = '"';
    put_value(p, (const unsigned char *)value);
    *(*p)++ = '"';
}

/* The label set of a row: server, client_host, then the tags. */
static char *render_labels(const char *server, const char *client_host, const char *tags)
{
    size_t room = 64 + 6 * (strlen(server) + strlen(client_host) + 2 * strlen(tags));
    char *buf = malloc(room), *p = buf;
    if (!buf)
        return NULL;
    put_label(&p, "server", 6, server, 1);
    put_label(&p, "client_host", 11, client_host, 0);
    for (const char *t = tags; *t;) {
        const char *end = strchr(t, ','), *eq = strchr(t, '=');
        size_t len = end ? (size_t)(end - t) : strlen(t);
        if (eq && eq < t + len) {
            char name[600], value[600];
            snprintf(name, sizeof name, "tag_%.*s", (int)(eq - t), t);
            snprintf(value, sizeof value, "%.*s", (int)(t + len - eq - 1), eq + 1);
            put_label(&p, name, strlen(name), value, 0);
        }
        t += len + (end != NULL);
    }
    *p = '\0';
    return buf;
}

static struct slc_series *series_of(struct slc_family_set *fs, char *labels)
{
    for (size_t i = fs->n; i-- > 0;)
        if (strcmp(fs->s[i].labels, labels) == 0) {
            free(labels);
            return &fs->s[i];
        }
    if (fs->n == fs->cap) {
        size_t cap = fs->cap ? 2 * fs->cap : 16;
        struct slc_series *s = realloc(fs->s, cap * sizeof *s);
        if (!s) {
            free(labels);
            return NULL;
        }
        fs->s = s;
        fs->cap = cap;
    }
    struct slc_series *s = &fs->s[fs->n++];
    memset(s, 0, sizeof *s);
    s->labels = labels;
    return s;
}

static void observe_value(struct slc_series *s, int phase, double seconds)
{
    int b = 0;
    while (b < SLC_NBUCKETS && seconds > slc_buckets[b])
        b++;
    s->buckets[phase][b]++;
    s->sum[phase] += seconds;
}

/* Adds the rows of one scope's view: its phases, per label set. */
static int add_view(sqlite3 *db, const struct obs_filter *f, const struct slc_scope *sc, struct slc_family_set *fs)
{
    char select[512];
    int n = snprintf(select, sizeof select,
                     "SELECT coalesce(server, peer_addr || ':' || peer_port, '-'), client_host, coalesce(tags, '')");
    for (int p = 0; p < sc->nphases; p++)
        n += snprintf(select + n, sizeof select - (size_t)n, ", t%d_ms", sc->phases[p]);
    snprintf(select + n, sizeof select - (size_t)n, " FROM %s", sc->view);
    char err[1024];
    int usage;
    sqlite3_stmt *st = obs_filter_prepare(db, f, sc->fv, select, "", "", &usage, err, sizeof err);
    if (!st) {
        fprintf(stderr, "%s: %s\n", slc_prog, err);
        return usage ? -2 : -1;
    }
    int rc, status = 0;
    while (status == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        char *labels = render_labels((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                                     (const char *)sqlite3_column_text(st, 2));
        struct slc_series *s = labels ? series_of(fs, labels) : NULL;
        if (!s) {
            fprintf(stderr, "%s: out of memory\n", slc_prog);
            status = -1;
            break;
        }
        for (int p = 0; p < sc->nphases; p++)
            if (sqlite3_column_type(st, 3 + p) != SQLITE_NULL)
                observe_value(s, sc->phases[p], sqlite3_column_double(st, 3 + p) / 1e3);
    }
    if (status == 0 && rc != SQLITE_DONE) {
        fprintf(stderr, "%s: database error: %s\n", slc_prog, sqlite3_errmsg(db));
        status = -1;
    }
    sqlite3_finalize(st);
    return status;
}

static void print_family(FILE *out, const struct slc_family_set *fs, int phase, const char *per)
{
    fprintf(out, "# TYPE observe_t%d_seconds histogram\n# UNIT observe_t%d_seconds seconds\n", phase, phase);
    print_help(out, phase, per);
    for (size_t i = 0; i < fs->n; i++) {
        const struct slc_series *s = &fs->s[i];
        uint64_t cum = 0;
        for (int b = 0; b <= SLC_NBUCKETS; b++) {
            cum += s->buckets[phase][b];
            if (b < SLC_NBUCKETS)
                fprintf(out, "observe_t%d_seconds_bucket{%s,le=\"%g\"} %llu\n", phase, s->labels, slc_buckets[b],
                        (unsigned long long)cum);
            else
                fprintf(out, "observe_t%d_seconds_bucket{%s,le=\"+Inf\"} %llu\n", phase, s->labels,
                        (unsigned long long)cum);
        }
        fprintf(out, "observe_t%d_seconds_count{%s} %llu\n", phase, s->labels, (unsigned long long)cum);
        fprintf(out, "observe_t%d_seconds_sum{%s} %.9g\n", phase, s->labels, s->sum[phase]);
    }
}

int slc_openmetrics(sqlite3 *db, const struct obs_filter *f, FILE *out)
{
    struct slc_family_set sets[SLC_NSCOPES] = { 0 };
    int rc = 0;
    for (int i = 0; i < SLC_NSCOPES && rc == 0; i++)
        rc = add_view(db, f, &slc_scopes[i], &sets[i]);
    for (int phase = 1; phase <= 7 && rc == 0; phase++) /* families in phase order */
        for (int i = 0; i < SLC_NSCOPES; i++)
            for (int p = 0; p < slc_scopes[i].nphases; p++)
                if (slc_scopes[i].phases[p] == phase)
                    print_family(out, &sets[i], phase, slc_scopes[i].per);
    if (rc == 0)
        fputs("# EOF\n", out);
    for (int i = 0; i < SLC_NSCOPES; i++) {
        for (size_t k = 0; k < sets[i].n; k++)
            free(sets[i].s[k].labels);
        free(sets[i].s);
    }
    return rc;
}
