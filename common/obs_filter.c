/* obs_filter.c — parsing and applying the common filters (obs_filter.h). */
#define _GNU_SOURCE
#include "obs_filter.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

const char obs_filter_help[] =
    "filters (each at most once, except --tag; all must hold):\n"
    "  --peer ADDR[/LEN]   peer address, or a network in CIDR form (IPv4 or IPv6)\n"
    "  --port PORT         peer port\n"
    "  --since TIME        started at or after TIME (UTC: YYYY-MM-DD[THH:MM[:SS[.frac]]],\n"
    "                      or @SECONDS since the epoch)\n"
    "  --until TIME        started before TIME\n"
    "  --tag KEY[=VALUE]   the process carries this tag (with this value); repeatable\n"
    "  --exe NAME          the client's executable (name or full path)\n"
    "  --side client|server  connections made (connect) or accepted (accept)\n";

void obs_filter_init(struct obs_filter *f)
{
    memset(f, 0, sizeof *f);
    f->port = -1;
    f->side = -1;
}

void obs_filter_free(struct obs_filter *f)
{
    for (int i = 0; i < f->ntags; i++)
        free(f->tag_key[i]);
    f->ntags = 0;
}

int obs_addr_parse(const char *text, struct obs_addr *a)
{
    memset(a, 0, sizeof *a);
    if (inet_pton(AF_INET, text, a->addr) == 1)
        a->family = AF_INET;
    else if (inet_pton(AF_INET6, text, a->addr) == 1)
        a->family = AF_INET6;
    else
        return -1;
    return 0;
}

int obs_addr_in_net(const struct obs_addr *a, const struct obs_addr *net, int prefix)
{
    if (a->family != net->family)
        return 0;
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a->addr, net->addr, (size_t)full) != 0)
        return 0;
    if (rest) {
        unsigned mask = (0xFFu << (8 - rest)) & 0xFFu;
        if ((a->addr[full] & mask) != (net->addr[full] & mask))
            return 0;
    }
    return 1;
}

static int parse_net(struct obs_filter *f, const char *text)
{
    char buf[64];
    if (strlen(text) >= sizeof buf)
        return -1;
    strcpy(buf, text);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    if (obs_addr_parse(buf, &f->net) != 0)
        return -1;
    int max = f->net.family == AF_INET ? 32 : 128;
    f->prefix = max;
    if (slash) {
        char *end;
        long n = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || n < 0 || n > max)
            return -1;
        f->prefix = (int)n;
    }
    f->has_peer = 1;
    return 0;
}

/* Digits of a fixed count: the value, or -1. */
static int digits(const char **s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*s)++) {
        if (!isdigit((unsigned char)**s))
            return -1;
        v = v * 10 + (**s - '0');
    }
    return v;
}

/* ".frac" (up to 9 digits) to nanoseconds; advances *s. */
static int64_t fraction_ns(const char **s)
{
    int64_t ns = 0, scale = 100000000;
    if (**s != '.')
        return 0;
    for ((*s)++; isdigit((unsigned char)**s); (*s)++) {
        ns += (**s - '0') * scale;
        scale /= 10;
    }
    return ns;
}

static int days_in_month(int y, int mo)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return days[mo - 1] + (mo == 2 && leap);
}

int obs_parse_wall_time(const char *text, int64_t *ns)
{
    const char *s = text;
    if (*s == '@') {
        char *end;
        s++;
        if (!isdigit((unsigned char)*s))
            return -1;
        long long secs = strtoll(s, &end, 10);
        s = end;
        int64_t frac = fraction_ns(&s);
        if (*s || secs > 9000000000LL)
            return -1;
        *ns = (int64_t)secs * 1000000000 + frac;
        return 0;
    }
    struct tm tm = { 0 };
    int y = digits(&s, 4), mo = (*s == '-' ? s++, digits(&s, 2) : -1), d = (*s == '-' ? s++, digits(&s, 2) : -1);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    int h = 0, mi = 0, sec = 0;
    int64_t frac = 0;
    if (*s == 'T' || *s == ' ') {
        s++;
        h = digits(&s, 2);
        mi = *s == ':' ? (s++, digits(&s, 2)) : -1;
        if (*s == ':') {
            s++;
            sec = digits(&s, 2);
            frac = fraction_ns(&s);
        }
        if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
            return -1;
    }
    if (*s == 'Z')
        s++;
    if (*s)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    *ns = (int64_t)t * 1000000000 + frac;
    return 0;
}

int obs_tag_valid(const char *kv)
{
    const char *s = kv + obs_tag_key_len(kv);
    if (s == kv || (*s && *s != '='))
        return 0;
    return strchr(s, ',') == NULL;
}

void obs_tags_each(const char *tags, void (*fn)(void *ctx, const char *k, size_t kl, const char *v, size_t vl),
                   void *ctx)
{
    const char *s = tags;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        if (eq && eq > s)
            fn(ctx, s, (size_t)(eq - s), eq + 1, len - (size_t)(eq - s) - 1);
        s += len;
        if (*s == ',')
            s++;
    }
}

/* The value of an option given as "--opt VALUE" or "--opt=VALUE". */
static const char *option_value(int argc, char **argv, int *i, const char *name, int *matched)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    *matched = 0;
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=') {
        *matched = 1;
        return a + n + 1;
    }
    if (a[n] != '\0')
        return NULL;
    *matched = 1;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

int obs_filter_option(struct obs_filter *f, int argc, char **argv, int *i, char *err, size_t errlen)
{
    static const char *const names[] = { "--peer", "--port", "--since", "--until", "--tag", "--exe", "--side" };
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        int matched;
        const char *v = option_value(argc, argv, i, names[k], &matched);
        if (!matched)
            continue;
        if (!v) {
            snprintf(err, errlen, "%s needs a value", names[k]);
            return -1;
        }
        int again = 0, bad = 0;
        switch (k) {
        case 0:
            again = f->has_peer;
            bad = parse_net(f, v) != 0;
            break;
        case 1: {
            char *end;
            long p = strtol(v, &end, 10);
            again = f->port >= 0;
            bad = !*v || *end || p < 0 || p > 65535;
            f->port = (int)p;
            break;
        }
        case 2:
            again = f->has_since;
            f->has_since = 1;
            bad = obs_parse_wall_time(v, &f->since_ns) != 0;
            break;
        case 3:
            again = f->has_until;
            f->has_until = 1;
            bad = obs_parse_wall_time(v, &f->until_ns) != 0;
            break;
        case 4: {
            if (f->ntags == OBS_FILTER_MAX_TAGS) {
                snprintf(err, errlen, "at most %d --tag filters", OBS_FILTER_MAX_TAGS);
                return -1;
            }
            bad = !obs_tag_valid(v);
            if (!bad) {
                char *kv = strdup(v);
                char *eq = strchr(kv, '=');
                if (eq)
                    *eq = '\0';
                f->tag_key[f->ntags] = kv;
                f->tag_value[f->ntags++] = eq ? eq + 1 : NULL;
            }
            break;
        }
        case 5:
            again = f->exe != NULL;
            f->exe = v;
            bad = !*v;
            break;
        case 6:
            again = f->side >= 0;
            f->side = strcmp(v, "client") == 0 ? 0 : strcmp(v, "server") == 0 ? 1 : -1;
            bad = f->side < 0;
            break;
        }
        if (again) {
            snprintf(err, errlen, "%s given twice", names[k]);
            return -1;
        }
        if (bad) {
            snprintf(err, errlen, "bad value for %s: '%s'", names[k], v);
            return -1;
        }
        return 1;
    }
    return 0;
}

int obs_filter_has_record_terms(const struct obs_filter *f)
{
    return f->has_peer || f->port >= 0 || f->has_since || f->has_until || f->side >= 0;
}

/* ---- SQL ------------------------------------------------------------------ */

static void in_cidr(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const unsigned char *text = sqlite3_value_text(argv[0]);
    const void *net = sqlite3_value_blob(argv[1]);
    struct obs_addr a, n;
    if (!text || !net || sqlite3_value_bytes(argv[1]) != (int)sizeof n ||
        obs_addr_parse((const char *)text, &a) != 0) {
        sqlite3_result_int(ctx, 0);
        return;
    }
    memcpy(&n, net, sizeof n);
    sqlite3_result_int(ctx, obs_addr_in_net(&a, &n, sqlite3_value_int(argv[2])));
}

int obs_filter_register(sqlite3 *db)
{
    return sqlite3_create_function(db, "observe_in_cidr", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
                                   NULL, in_cidr, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int append(char *sql, size_t len, const char *text)
{
    size_t used = strlen(sql);
    if (used + strlen(text) + 1 > len)
        return -1;
    strcpy(sql + used, text);
    return 0;
}

int obs_filter_sql(const struct obs_filter *f, enum obs_filter_view v, char *sql, size_t len, char *err,
                   size_t errlen)
{
    static const char *const view_names[] = { "connections", "exchanges", "datagrams", "waits" };
    int per_record = v != OBS_FV_WAITS;
    if (!per_record && obs_filter_has_record_terms(f)) {
        snprintf(err, errlen, "--peer, --port, --since, --until and --side do not apply to %s", view_names[v]);
        return -1;
    }
    if (v == OBS_FV_DATAGRAMS && f->side >= 0) {
        snprintf(err, errlen, "--side does not apply to datagrams");
        return -1;
    }
    int rc = 0;
    if (f->has_peer)
        rc |= append(sql, len, " AND observe_in_cidr(peer_addr, :f_net, :f_prefix)");
    if (f->port >= 0)
        rc |= append(sql, len, " AND peer_port = :f_port");
    if (f->has_since)
        rc |= append(sql, len, " AND start_ns >= :f_since");
    if (f->has_until)
        rc |= append(sql, len, " AND start_ns < :f_until");
    if (f->side >= 0)
        rc |= append(sql, len, " AND side = :f_side");
    if (f->exe)
        rc |= append(sql, len, " AND (exe = :f_exe OR run IN (SELECT run_id FROM runs WHERE exe_path = :f_exe))");
    for (int i = 0; i < f->ntags; i++) {
        char term[200];
        if (f->tag_value[i])
            snprintf(term, sizeof term, " AND run IN (SELECT run FROM tags WHERE key = :f_tk%d AND value = :f_tv%d)",
                     i, i);
        else
            snprintf(term, sizeof term, " AND run IN (SELECT run FROM tags WHERE key = :f_tk%d)", i);
        rc |= append(sql, len, term);
    }
    if (rc) {
        snprintf(err, errlen, "filter too long");
        return -1;
    }
    return 0;
}

sqlite3_stmt *obs_filter_prepare(sqlite3 *db, const struct obs_filter *f, enum obs_filter_view v, const char *head,
                                 const char *extra, const char *tail, int *usage, char *err, size_t errlen)
{
    char sql[8192];
    *usage = 0;
    snprintf(sql, sizeof sql, "%s WHERE 1%s", head, extra);
    if (obs_filter_sql(f, v, sql, sizeof sql, err, errlen) != 0) {
        *usage = 1;
        return NULL;
    }
    size_t used = strlen(sql);
    snprintf(sql + used, sizeof sql - used, " %s", tail);
    sqlite3_stmt *st = NULL;
    if (obs_filter_register(db) != 0 || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
        obs_filter_bind(f, st) != 0) {
        snprintf(err, errlen, "database error: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

static int bind_text(sqlite3_stmt *st, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    return i ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) : SQLITE_OK;
}

static int bind_int(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    return i ? sqlite3_bind_int64(st, i, v) : SQLITE_OK;
}

int obs_filter_bind(const struct obs_filter *f, sqlite3_stmt *st)
{
    int rc = SQLITE_OK;
    if (f->has_peer) {
        int i = sqlite3_bind_parameter_index(st, ":f_net");
        if (i)
            rc |= sqlite3_bind_blob(st, i, &f->net, sizeof f->net, SQLITE_TRANSIENT);
        rc |= bind_int(st, ":f_prefix", f->prefix);
    }
    rc |= bind_int(st, ":f_port", f->port);
    rc |= bind_int(st, ":f_since", f->since_ns);
    rc |= bind_int(st, ":f_until", f->until_ns);
    rc |= bind_text(st, ":f_side", f->side == 1 ? "server" : "client");
    if (f->exe)
        rc |= bind_text(st, ":f_exe", f->exe);
    for (int i = 0; i < f->ntags; i++) {
        char name[24];
        snprintf(name, sizeof name, ":f_tk%d", i);
        rc |= bind_text(st, name, f->tag_key[i]);
        snprintf(name, sizeof name, ":f_tv%d", i);
        if (f->tag_value[i])
            rc |= bind_text(st, name, f->tag_value[i]);
    }
    return rc == SQLITE_OK ? 0 : -1;
}

/* ---- records, while loading ---------------------------------------------- */

struct tag_match {
    const char *key, *value;
    int found;
};

static void match_tag(void *ctx, const char *k, size_t kl, const char *v, size_t vl)
{
    struct tag_match *m = ctx;
    if (strlen(m->key) == kl && memcmp(m->key, k, kl) == 0 &&
        (!m->value || (strlen(m->value) == vl && memcmp(m->value, v, vl) == 0)))
        m->found = 1;
}

int obs_filter_run_passes(const struct obs_filter *f, const char *exe_path, const char *tags)
{
    if (f->exe) {
        const char *base = strrchr(exe_path, '/');
        base = base ? base + 1 : exe_path;
        if (strcmp(f->exe, exe_path) != 0 && strcmp(f->exe, base) != 0)
            return 0;
    }
    for (int i = 0; i < f->ntags; i++) {
        struct tag_match m = { f->tag_key[i], f->tag_value[i], 0 };
        obs_tags_each(tags, match_tag, &m);
        if (!m.found)
            return 0;
    }
    return 1;
}

int obs_filter_record_passes(const struct obs_filter *f, const struct obs_addr *peer, int side, int64_t wall_ns)
{
    if (f->has_peer && !obs_addr_in_net(peer, &f->net, f->prefix))
        return 0;
    if (f->port >= 0 && (!peer->family || peer->port != f->port))
        return 0;
    if (f->has_since && wall_ns < f->since_ns)
        return 0;
    if (f->has_until && wall_ns >= f->until_ns)
        return 0;
    if (f->side >= 0 && side >= 0 && side != f->side)
        return 0;
    return 1;
}
