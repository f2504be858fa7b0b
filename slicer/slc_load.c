/* slc_load.c — loading libobserve logs into the database (observe-slicer load).
 *
 * One row per record, keyed by (run, offset) packed into the rowid, so a
 * reload replaces rows instead of adding them and a fresh load appends in
 * key order (the cheapest insert SQLite has).  Each run remembers the offset
 * before which every record was final when it was loaded; a later load of
 * the same log (the process was still running) starts there, so only the
 * records that were open or new are read again.  Logs are loaded in
 * transactions of whole logs, committed once a few hundred thousand records
 * are in (never in the middle of a log, so a log is in the database
 * entirely or not at all): a concurrent slicer waits for its turn (busy
 * timeout) and both succeed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fts.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/obs_db.h"
#include "../common/obs_reader.h"
#include "slc.h"

#define SLC_COMMIT_EVERY 500000 /* records after which the transaction commits, at the next log's start */

/* A record's key: its run and its log offset in units. */
static inline int64_t slc_key(int64_t run, uint64_t offset)
{
    return (run << 34) | (int64_t)(offset / OBS_UNIT);
}

enum { ST_RUN, ST_TAG_REC, ST_TAG_ADD, ST_TAGS_TEXT, ST_WAITAGG, ST_UPTO, ST_COUNT };

#define SLC_X_COUNTER_COL(name, doc) #name ", "
#define SLC_X_COUNTER_PARAM(name, doc) "?, "
#define SLC_X_COUNTER_SET(name, doc) #name " = excluded." #name ", "

static const char *const slc_sql[ST_COUNT] = {
    [ST_RUN] = "INSERT INTO runs (run_id, client_host, boot_id, pid, ppid, uid, exe_path, exe, args, tags, "
               "anchor_realtime_ns, anchor_monotonic_ns, wait_mode, " OBS_COUNTERS(SLC_X_COUNTER_COL)
               "source, loaded_upto, loaded_at, hostname) VALUES (?1, ?2, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, "
               OBS_COUNTERS(SLC_X_COUNTER_PARAM) "?, 0, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?2) "
               "ON CONFLICT(run_id) DO UPDATE SET " OBS_COUNTERS(SLC_X_COUNTER_SET)
               "source = excluded.source, loaded_at = excluded.loaded_at RETURNING id, loaded_upto",
    /* recorded tags never override a value added later with -t */
    [ST_TAG_REC] = "INSERT OR IGNORE INTO run_tags (run, key, value) VALUES (?, ?, ?)",
    [ST_TAG_ADD] = "INSERT OR REPLACE INTO run_tags (run, key, value) VALUES (?, ?, ?)",
    [ST_TAGS_TEXT] = "UPDATE runs SET tags = (SELECT coalesce(group_concat(key || '=' || value, ','), '') FROM "
                     "(SELECT key, value FROM run_tags WHERE run = ?1 ORDER BY key)) WHERE id = ?1",
    [ST_WAITAGG] = "INSERT OR REPLACE INTO wait_aggs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_UPTO] = "UPDATE runs SET loaded_upto = ? WHERE id = ?",
};

#define SLC_BATCH 32

/* Rows of one table waiting to be inserted (all of one run). */
struct slc_queue {
    sqlite3_stmt *one, *many;
    int n;
    int64_t run;
    struct obs_record rec[SLC_BATCH];
    char addr[SLC_BATCH][2][64];
};

struct slc_loader {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    struct slc_queue queue[OBS_REC_TYPE_MAX];
    const struct slc_load_opts *o;
    struct slc_load_stats *stats;
    int in_txn;
    uint64_t since_commit;
    int status; /* 0, 1 input problem, -1 database error */
    /* the log being loaded */
    struct obs_log_reader r;
    int64_t run;
    int64_t wall_minus_mono; /* add to a monotonic time to get wall-clock ns */
    uint8_t *kept;           /* per unit: record kept by the filters (conns, udp sockets) */
    uint64_t kept_units;
};

static void slc_db_error(struct slc_loader *L, const char *what)
{
    fprintf(stderr, "%s: database error %s: %s\n", slc_prog, what, sqlite3_errmsg(L->db));
    L->status = -1;
}

static int slc_step(struct slc_loader *L, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        slc_db_error(L, what);
        return -1;
    }
    return 0;
}


static int slc_flush_all(struct slc_loader *L);

/* Begins or commits a transaction (queued rows are inserted first). */
static int slc_txn(struct slc_loader *L, int begin)
{
    if (begin == L->in_txn)
        return 0;
    if (!begin && slc_flush_all(L) != 0)
        return -1;
    char err[512];
    if (obs_db_exec(L->db, begin ? "BEGIN IMMEDIATE" : "COMMIT", err, sizeof err) != 0) {
        fprintf(stderr, "%s: database error at %s: %s\n", slc_prog, begin ? "BEGIN" : "COMMIT", err);
        L->status = -1;
        return -1;
    }
    L->in_txn = begin;
    L->since_commit = 0;
    return 0;
}

/* ---- binding helpers ------------------------------------------------------- */

static void bind_time(sqlite3_stmt *st, int i, uint64_t t, uint64_t ref)
{
    if (t && ref)
        sqlite3_bind_int64(st, i, (int64_t)(t - ref));
    else
        sqlite3_bind_null(st, i);
}

static void bind_ref(sqlite3_stmt *st, int i, uint64_t ref)
{
    if (ref)
        sqlite3_bind_int64(st, i, (int64_t)ref);
    else
        sqlite3_bind_null(st, i);
}

/* Binds an address as (text, port) at i and i+1; NULLs when unknown.  The
 * text is formatted into buf, which must live until the statement is
 * stepped (no copy). */
static void bind_addr(sqlite3_stmt *st, int i, const struct obs_addr *a, char buf[static 64])
{
    if (!a->family) {
        sqlite3_bind_null(st, i);
        sqlite3_bind_null(st, i + 1);
        return;
    }
    obs_addr_ip(a, buf, 64);
    sqlite3_bind_text(st, i, buf, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, i + 1, a->port);
}

/* The first of the times that happened (0 if none). */
static uint64_t first_time(const uint64_t *t, int n)
{
    for (int i = 0; i < n; i++)
        if (t[i])
            return t[i];
    return 0;
}

/* ---- one record of each type ----------------------------------------------
 * Rows are queued per table and inserted SLC_BATCH at a time by one
 * multi-row INSERT: one statement run (one cursor, one B-tree descent)
 * for the batch instead of one per row.  A binder puts a record's row at
 * parameter p (its first column); addr keeps the text of its addresses
 * until the statement has run. */

typedef void slc_binder(sqlite3_stmt *st, int p, int64_t run, const struct obs_record *rec, char addr[2][64]);

static void bind_conn(sqlite3_stmt *st, int p, int64_t run, const struct obs_record *rec, char addr[2][64])
{
    const struct obs_conn_fields *c = &rec->u.conn;
    const uint64_t times[] = { c->t_connect, c->t_resolve_start, c->t_established, c->t_req_first, c->t_close };
    uint64_t ref = first_time(times, 5);
    sqlite3_bind_int64(st, p, slc_key(run, rec->offset));
    sqlite3_bind_int64(st, p + 1, run);
    sqlite3_bind_int(st, p + 2, rec->state == OBS_STATE_FINAL);
    sqlite3_bind_int(st, p + 3, (int)rec->flags);
    sqlite3_bind_int(st, p + 4, (int)c->side);
    sqlite3_bind_int(st, p + 5, c->fd);
    bind_ref(st, p + 6, ref);
    bind_time(st, p + 7, c->t_resolve_start, ref);
    bind_time(st, p + 8, c->t_resolve_end, ref);
    bind_time(st, p + 9, c->t_connect, ref);
    bind_time(st, p + 10, c->t_established, ref);
    bind_time(st, p + 11, c->t_req_first, ref);
    bind_time(st, p + 12, c->t_req_last, ref);
    bind_time(st, p + 13, c->t_resp_ready, ref);
    bind_time(st, p + 14, c->t_resp_first, ref);
    bind_time(st, p + 15, c->t_resp_last, ref);
    bind_time(st, p + 16, c->t_shutdown, ref);
    bind_time(st, p + 17, c->t_close, ref);
    sqlite3_bind_int64(st, p + 18, (int64_t)c->bytes_sent);
    sqlite3_bind_int64(st, p + 19, (int64_t)c->bytes_received);
    sqlite3_bind_int64(st, p + 20, (int64_t)c->send_calls);
    sqlite3_bind_int64(st, p + 21, (int64_t)c->recv_calls);
    sqlite3_bind_int64(st, p + 22, c->exchanges);
    sqlite3_bind_int(st, p + 23, c->connect_errno);
    bind_addr(st, p + 24, &c->local, addr[0]);
    bind_addr(st, p + 26, &c->peer, addr[1]);
    bind_time(st, p + 28, c->t_resp_end, ref);
}

static void bind_xchg(sqlite3_stmt *st, int p, int64_t run, const struct obs_record *rec, char addr[2][64])
{
    (void)addr;
    const struct obs_xchg_fields *x = &rec->u.xchg;
    const uint64_t times[] = { x->t_req_first, x->t_req_last, x->t_resp_first };
    uint64_t ref = first_time(times, 3);
    sqlite3_bind_int64(st, p, slc_key(run, rec->offset));
    sqlite3_bind_int64(st, p + 1, slc_key(run, x->conn));
    sqlite3_bind_int(st, p + 2, rec->state == OBS_STATE_FINAL);
    sqlite3_bind_int(st, p + 3, (int)x->seq);
    bind_ref(st, p + 4, ref);
    bind_time(st, p + 5, x->t_req_first, ref);
    bind_time(st, p + 6, x->t_req_last, ref);
    bind_time(st, p + 7, x->t_resp_ready, ref);
    bind_time(st, p + 8, x->t_resp_first, ref);
    bind_time(st, p + 9, x->t_resp_last, ref);
    sqlite3_bind_int64(st, p + 10, (int64_t)x->bytes_sent);
    sqlite3_bind_int64(st, p + 11, (int64_t)x->bytes_received);
    sqlite3_bind_int(st, p + 12, (int)rec->flags);
}

static void bind_udp(sqlite3_stmt *st, int p, int64_t run, const struct obs_record *rec, char addr[2][64])
{
    const struct obs_udp_fields *u = &rec->u.udp;
    const uint64_t times[] = { u->t_first, u->t_close };
    uint64_t ref = first_time(times, 2);
    sqlite3_bind_int64(st, p, slc_key(run, rec->offset));
    sqlite3_bind_int64(st, p + 1, run);
    sqlite3_bind_int(st, p + 2, rec->state == OBS_STATE_FINAL);
    sqlite3_bind_int(st, p + 3, u->fd);
    bind_ref(st, p + 4, ref);
    bind_time(st, p + 5, u->t_close, ref);
    sqlite3_bind_int64(st, p + 6, (int64_t)u->dgrams_sent);
    sqlite3_bind_int64(st, p + 7, (int64_t)u->dgrams_received);
    sqlite3_bind_int64(st, p + 8, (int64_t)u->bytes_sent);
    sqlite3_bind_int64(st, p + 9, (int64_t)u->bytes_received);
    sqlite3_bind_int64(st, p + 10, (int64_t)u->answered);
    sqlite3_bind_int64(st, p + 11, (int64_t)u->unanswered);
    sqlite3_bind_int64(st, p + 12, (int64_t)u->unmatched);
    bind_addr(st, p + 13, &u->local, addr[0]);
    bind_addr(st, p + 15, &u->peer, addr[1]);
}

static void bind_dgram(sqlite3_stmt *st, int p, int64_t run, const struct obs_record *rec, char addr[2][64])
{
    const struct obs_dgram_fields *d = &rec->u.dgram;
    sqlite3_bind_int64(st, p, slc_key(run, rec->offset));
    sqlite3_bind_int64(st, p + 1, slc_key(run, d->sock));
    sqlite3_bind_int(st, p + 2, (rec->flags & OBS_RF_GUESSED) != 0);
    bind_ref(st, p + 3, d->t_send);
    bind_time(st, p + 4, d->t_recv, d->t_send);
    sqlite3_bind_int64(st, p + 5, (int64_t)d->bytes_sent);
    sqlite3_bind_int64(st, p + 6, (int64_t)d->bytes_received);
    bind_addr(st, p + 7, &d->peer, addr[0]);
}

static void bind_wait(sqlite3_stmt *st, int p, int64_t run, const struct obs_record *rec, char addr[2][64])
{
    (void)addr;
    const struct obs_wait_fields *w = &rec->u.wait;
    sqlite3_bind_int64(st, p, slc_key(run, rec->offset));
    sqlite3_bind_int64(st, p + 1, run);
    sqlite3_bind_text(st, p + 2, obs_mech_name(w->mech), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, p + 3, w->interest);
    sqlite3_bind_int(st, p + 4, w->ready);
    sqlite3_bind_int(st, p + 5, w->err);
    bind_ref(st, p + 6, w->t_enter);
    bind_time(st, p + 7, w->t_exit, w->t_enter);
}

/* The table of each record type, with its columns (db/schema.sql). */
static const struct {
    const char *table;
    int ncols;
    slc_binder *bind;
} slc_tables[OBS_REC_TYPE_MAX] = {
    [OBS_REC_CONN] = { "conns", 29, bind_conn },     [OBS_REC_XCHG] = { "xchgs", 13, bind_xchg },
    [OBS_REC_UDP] = { "udp_socks", 17, bind_udp },   [OBS_REC_DGRAM] = { "dgrams", 9, bind_dgram },
    [OBS_REC_WAIT] = { "waits", 8, bind_wait },
};

/* Prepares a table's one-row and SLC_BATCH-row inserts. */
static int slc_prepare_table(struct slc_loader *L, enum obs_rec_type type)
{
    struct slc_queue *q = &L->queue[type];
    char *sql = malloc(SLC_BATCH * (3 * 32 + 4) + 64);
    if (!sql)
        return -1;
    int rc = 0;
    for (int rows = 1; rows <= SLC_BATCH && rc == 0; rows += SLC_BATCH - 1) {
        char *p = sql + sprintf(sql, "INSERT OR REPLACE INTO %s VALUES ", slc_tables[type].table);
        for (int r = 0; r < rows; r++) {
            p += sprintf(p, "%s(?", r ? "," : "");
            for (int c = 1; c < slc_tables[type].ncols; c++)
                p += sprintf(p, ",?");
            *p++ = ')';
        }
        *p = '\0';
        rc = sqlite3_prepare_v3(L->db, sql, -1, SQLITE_PREPARE_PERSISTENT, rows == 1 ? &q->one : &q->many, NULL);
    }
    free(sql);
    return rc == SQLITE_OK ? 0 : -1;
}

/* Inserts the queued rows of a table. */
static int slc_flush(struct slc_loader *L, enum obs_rec_type type)
{
    struct slc_queue *q = &L->queue[type];
    int ncols = slc_tables[type].ncols, rc = 0;
    if (q->n == SLC_BATCH) {
        for (int i = 0; i < q->n; i++)
            slc_tables[type].bind(q->many, 1 + i * ncols, q->run, &q->rec[i], q->addr[i]);
        rc = slc_step(L, q->many, "inserting records");
    } else {
        for (int i = 0; i < q->n && rc == 0; i++) {
            slc_tables[type].bind(q->one, 1, q->run, &q->rec[i], q->addr[i]);
            rc = slc_step(L, q->one, "inserting a record");
        }
    }
    q->n = 0;
    return rc;
}

static int slc_flush_all(struct slc_loader *L)
{
    for (int t = 1; t < OBS_REC_TYPE_MAX; t++)
        if (slc_flush(L, (enum obs_rec_type)t) != 0)
            return -1;
    return 0;
}

static int slc_kept(struct slc_loader *L, uint64_t offset)
{
    uint64_t u = offset / OBS_UNIT;
    return u < L->kept_units && L->kept[u];
}

static void slc_keep(struct slc_loader *L, uint64_t offset, int keep)
{
    uint64_t u = offset / OBS_UNIT;
    if (u < L->kept_units)
        L->kept[u] = (uint8_t)keep;
}

static int slc_passes(struct slc_loader *L, const struct obs_addr *peer, int side, uint64_t mono)
{
    return obs_filter_record_passes(&L->o->filter, peer, side, mono ? (int64_t)mono + L->wall_minus_mono : 0);
}

/* Does the record pass the filters?  Connections and datagram sockets
 * decide for the exchanges and datagrams that refer to them. */
static int slc_wanted(struct slc_loader *L, const struct obs_record *rec)
{
    if (!L->kept)
        return 1;
    int keep = 1;
    switch (rec->type) {
    case OBS_REC_CONN: {
        const struct obs_conn_fields *c = &rec->u.conn;
        const uint64_t times[] = { c->t_connect, c->t_resolve_start, c->t_established, c->t_req_first, c->t_close };
        keep = slc_passes(L, &c->peer, (int)c->side, first_time(times, 5));
        slc_keep(L, rec->offset, keep);
        break;
    }
    case OBS_REC_XCHG:
        keep = slc_kept(L, rec->u.xchg.conn);
        break;
    case OBS_REC_UDP:
        /* kept unless its connected peer is filtered out; its datagrams
         * are filtered one by one */
        keep = !rec->u.udp.peer.family || slc_passes(L, &rec->u.udp.peer, -1, 0);
        slc_keep(L, rec->offset, keep);
        break;
    case OBS_REC_DGRAM:
        keep = slc_kept(L, rec->u.dgram.sock) && slc_passes(L, &rec->u.dgram.peer, -1, rec->u.dgram.t_send);
        break;
    case OBS_REC_WAIT:
        keep = slc_passes(L, &(struct obs_addr){ 0 }, -1, rec->u.wait.t_enter);
        break;
    default:
        break;
    }
    return keep;
}

static int slc_record(struct slc_loader *L, const struct obs_record *rec)
{
    if (!slc_wanted(L, rec)) {
        L->stats->filtered++;
        return 0;
    }
    struct slc_queue *q = &L->queue[rec->type];
    q->run = L->run;
    q->rec[q->n++] = *rec;
    L->stats->records[rec->type]++;
    return q->n == SLC_BATCH ? slc_flush(L, rec->type) : 0;
}

/* ---- the run (process) of a log --------------------------------------------- */

struct slc_tag_ctx {
    struct slc_loader *L;
    sqlite3_stmt *st;
    int rc;
};

static void slc_tag_insert(void *ctx, const char *k, size_t kl, const char *v, size_t vl)
{
    struct slc_tag_ctx *t = ctx;
    sqlite3_bind_int64(t->st, 1, t->L->run);
    sqlite3_bind_text(t->st, 2, k, (int)kl, SQLITE_TRANSIENT);
    sqlite3_bind_text(t->st, 3, v, (int)vl, SQLITE_TRANSIENT);
    if (slc_step(t->L, t->st, "inserting a tag") != 0)
        t->rc = -1;
}

/* A NUL-terminated copy of a fixed-size header string. */
static void hdr_str(char *dst, size_t dlen, const char *src, size_t slen)
{
    size_t n = strnlen(src, slen);
    if (n >= dlen)
        n = dlen - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void hex(char *dst, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(dst + 2 * i, "%02x", b[i]);
}

/* The run's tags as recorded, then the ones added with -t, as one text. */
static void slc_all_tags(const struct slc_loader *L, char *buf, size_t len)
{
    hdr_str(buf, len, L->r.hdr.tags, sizeof L->r.hdr.tags);
    for (int i = 0; i < L->o->nadd; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", used ? "," : "", L->o->add_tag[i]);
    }
}

/* Inserts or updates the run; sets L->run and *upto (where to resume). */
static int slc_run(struct slc_loader *L, uint64_t *upto)
{
    const struct obs_file_header *h = &L->r.hdr;
    char run_id[33], boot[41], host[65], exe[257], args[1100], tags[4096];
    hex(run_id, h->run_id, sizeof h->run_id);
    hdr_str(boot, sizeof boot, h->boot_id, sizeof h->boot_id);
    hdr_str(host, sizeof host, h->hostname, sizeof h->hostname);
    hdr_str(exe, sizeof exe, h->exe, sizeof h->exe);
    size_t alen = h->args_len < sizeof h->args ? h->args_len : sizeof h->args;
    memcpy(args, h->args, alen);
    for (size_t i = 0; i < alen; i++)
        if (args[i] == '\0')
            args[i] = ' ';
    while (alen && args[alen - 1] == ' ')
        alen--;
    args[alen] = '\0';
    const char *base = strrchr(exe, '/');
    sqlite3_stmt *st = L->st[ST_RUN];
    int i = 1;
    sqlite3_bind_text(st, i++, run_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, host, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, boot, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, i++, h->pid);
    sqlite3_bind_int(st, i++, h->ppid);
    sqlite3_bind_int64(st, i++, h->uid);
    sqlite3_bind_text(st, i++, exe, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, base ? base + 1 : exe, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, args, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, i++, h->anchor_realtime_ns);
    sqlite3_bind_int64(st, i++, h->anchor_monotonic_ns);
    sqlite3_bind_text(st, i++, h->wait_mode ? "all" : "aggregate", -1, SQLITE_STATIC);
#define SLC_X_COUNTER_BIND(name, doc) sqlite3_bind_int64(st, i++, (int64_t)h->counters.name);
    OBS_COUNTERS(SLC_X_COUNTER_BIND)
    sqlite3_bind_text(st, i++, L->r.path, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        slc_db_error(L, "recording the process");
        return -1;
    }
    L->run = sqlite3_column_int64(st, 0);
    *upto = (uint64_t)sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    L->wall_minus_mono = h->anchor_realtime_ns - h->anchor_monotonic_ns;

    struct slc_tag_ctx t = { L, L->st[ST_TAG_REC], 0 };
    hdr_str(tags, sizeof tags, h->tags, sizeof h->tags);
    obs_tags_each(tags, slc_tag_insert, &t);
    t.st = L->st[ST_TAG_ADD];
    for (int k = 0; k < L->o->nadd; k++)
        obs_tags_each(L->o->add_tag[k], slc_tag_insert, &t);
    sqlite3_bind_int64(L->st[ST_TAGS_TEXT], 1, L->run);
    if (t.rc != 0 || slc_step(L, L->st[ST_TAGS_TEXT], "recording tags") != 0)
        return -1;

    for (unsigned m = 0; m < OBS_MECH_COUNT; m++) {
        const struct obs_wait_agg *a = &h->waits[m];
        if (!a->calls)
            continue;
        st = L->st[ST_WAITAGG];
        sqlite3_bind_int64(st, 1, L->run);
        sqlite3_bind_text(st, 2, obs_mech_name(m), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t)a->calls);
        sqlite3_bind_int64(st, 4, (int64_t)a->interest_sum);
        sqlite3_bind_int64(st, 5, (int64_t)a->ready_sum);
        sqlite3_bind_int64(st, 6, (int64_t)a->blocked_ns);
        sqlite3_bind_int64(st, 7, (int64_t)a->blocked_max_ns);
        sqlite3_bind_int64(st, 8, (int64_t)a->errors);
        if (slc_step(L, st, "recording event waits") != 0)
            return -1;
    }
    return 0;
}

/* ---- one log ------------------------------------------------------------------ */

static void slc_problem(struct slc_loader *L, const char *msg)
{
    fprintf(stderr, "%s: %s\n", slc_prog, msg);
    L->stats->problems++;
    if (L->status == 0)
        L->status = 1;
}

static int slc_load_log(struct slc_loader *L, const char *path)
{
    if (obs_reader_open(&L->r, path) != 0) {
        slc_problem(L, L->r.msg);
        return 0;
    }
    L->stats->files++;
    if (L->r.warn[0])
        slc_problem(L, L->r.warn);
    if (L->r.hdr.counters.dropped) {
        /* the data is incomplete, though nothing is wrong with the log */
        fprintf(stderr, "%s: %s: the library dropped %llu records (its log was full, or the disk): this "
                "process's data is incomplete\n", slc_prog, path, (unsigned long long)L->r.hdr.counters.dropped);
        L->stats->incomplete++;
    }
    char tags[4096];
    slc_all_tags(L, tags, sizeof tags);
    if (!obs_filter_run_passes(&L->o->filter, L->r.hdr.exe, tags)) {
        L->stats->runs_skipped++;
        obs_reader_close(&L->r);
        return 0;
    }
    int rc = -1;
    uint64_t upto = 0;
    if (L->since_commit >= SLC_COMMIT_EVERY && slc_txn(L, 0) != 0)
        goto out;
    if (slc_txn(L, 1) != 0 || slc_run(L, &upto) != 0)
        goto out;
    int filtering = obs_filter_has_record_terms(&L->o->filter);
    if (filtering) {
        /* records are decided anew: a record left out before may pass now */
        L->kept_units = L->r.end / OBS_UNIT + 1;
        L->kept = calloc(L->kept_units, 1);
        if (!L->kept) {
            fprintf(stderr, "%s: out of memory\n", slc_prog);
            L->status = -1;
            goto out;
        }
    } else if (upto > OBS_HEADER_SIZE) {
        obs_reader_seek(&L->r, upto);
    }
    uint64_t stable = 0; /* offset of the first record that may still change */
    struct obs_record rec;
    for (;;) {
        uint64_t at = L->r.pos;
        int got = obs_reader_next(&L->r, &rec);
        if (got == 0)
            break;
        if (got < 0) {
            slc_problem(L, L->r.msg);
            if (!stable)
                stable = at;
            continue;
        }
        if (rec.state != OBS_STATE_FINAL && !stable)
            stable = rec.offset;
        if (slc_record(L, &rec) != 0)
            goto out;
        L->since_commit++;
    }
    if (slc_flush_all(L) != 0)
        goto out;
    if (!filtering) {
        sqlite3_bind_int64(L->st[ST_UPTO], 1, (int64_t)(stable ? stable : L->r.pos));
        sqlite3_bind_int64(L->st[ST_UPTO], 2, L->run);
        if (slc_step(L, L->st[ST_UPTO], "recording progress") != 0)
            goto out;
    }
    rc = 0;
out:
    free(L->kept);
    L->kept = NULL;
    obs_reader_close(&L->r);
    return rc;
}

/* ---- walking the paths ---------------------------------------------------------- */

static int by_name(const FTSENT **a, const FTSENT **b)
{
    return strcmp((*a)->fts_name, (*b)->fts_name);
}

static int is_log_name(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".olog") == 0;
}

static const char *slc_file_kind(mode_t m)
{
    return S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
         : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

static int slc_walk(struct slc_loader *L, char *const *paths, int npaths)
{
    for (int p = 0; p < npaths && L->status >= 0; p++) {
        char *one[2] = { paths[p], NULL };
        uint64_t files_before = L->stats->files, problems_before = L->stats->problems;
        FTS *fts = fts_open(one, FTS_PHYSICAL | FTS_NOCHDIR | FTS_COMFOLLOW, by_name);
        if (!fts) {
            fprintf(stderr, "%s: %s: %s\n", slc_prog, paths[p], strerror(errno));
            L->status = L->status ? L->status : 1;
            continue;
        }
        FTSENT *e;
        while ((e = fts_read(fts)) != NULL && L->status >= 0) {
            char msg[4400];
            switch (e->fts_info) {
            case FTS_F:
                /* a file named on the command line is loaded whatever its name */
                if (e->fts_level == 0 || is_log_name(e->fts_name))
                    slc_load_log(L, e->fts_path);
                break;
            case FTS_DNR:
            case FTS_ERR:
            case FTS_NS:
                snprintf(msg, sizeof msg, "%s: cannot read: %s", e->fts_path, strerror(e->fts_errno));
                slc_problem(L, msg);
                break;
            case FTS_SL:
            case FTS_SLNONE:
                if (e->fts_level == 0 || is_log_name(e->fts_name)) {
                    snprintf(msg, sizeof msg, "%s: a symbolic link, not followed", e->fts_path);
                    slc_problem(L, msg);
                }
                break;
            case FTS_DEFAULT: /* a FIFO would block a read, a device never end it */
                if (e->fts_level == 0 || is_log_name(e->fts_name)) {
                    snprintf(msg, sizeof msg, "%s: %s, not a log file or a directory", e->fts_path,
                             slc_file_kind(e->fts_statp->st_mode));
                    slc_problem(L, msg);
                }
                break;
            default:
                break;
            }
        }
        fts_close(fts);
        if (L->stats->files == files_before && L->stats->problems == problems_before)
            fprintf(stderr, "%s: %s: no logs (*.olog) there\n", slc_prog, paths[p]);
    }
    return 0;
}

int slc_load(sqlite3 *db, const struct slc_load_opts *o, char *const *paths, int npaths,
             struct slc_load_stats *stats)
{
    struct slc_loader L = { .db = db, .o = o, .stats = stats };
    memset(stats, 0, sizeof *stats);
    char err[512];
    /* bulk loading: a bigger page cache, sorting in memory */
    obs_db_exec(db, "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY", err, sizeof err);
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(db, slc_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &L.st[i], NULL) != SQLITE_OK) {
            fprintf(stderr, "%s: database error preparing statements: %s\n", slc_prog, sqlite3_errmsg(db));
            L.status = -1;
            goto out;
        }
    }
    for (int t = 1; t < OBS_REC_TYPE_MAX; t++) {
        if (slc_prepare_table(&L, (enum obs_rec_type)t) != 0) {
            fprintf(stderr, "%s: database error preparing statements: %s\n", slc_prog, sqlite3_errmsg(db));
            L.status = -1;
            goto out;
        }
    }
    slc_walk(&L, paths, npaths);
    if (L.in_txn) {
        if (L.status < 0)
            obs_db_exec(db, "ROLLBACK", err, sizeof err);
        else
            slc_txn(&L, 0);
    }
out:
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(L.st[i]);
    for (int t = 0; t < OBS_REC_TYPE_MAX; t++) {
        sqlite3_finalize(L.queue[t].one);
        sqlite3_finalize(L.queue[t].many);
    }
    return L.status;
}
