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
    int n, ncols;
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
    /* progress (o->progress): bytes of logs in all, and of those done */
    uint64_t bytes_total, bytes_done, records_seen;
    double started, shown;   /* seconds */
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

/* ---- rows from the field lists ---------------------------------------------
 * A record's row is made from its field list (common/obs_format.h), so a new
 * field needs only its line there and its column in db/schema.sql.  Each
 * kind has one column form:
 *   TIME   d_<name without t_>: ns after the row's t_ref, NULL when absent
 *   COUNT, INT, ENUM   <name>
 *   MECH   mechanism, by name
 *   ADDR   <name>_addr (text) and <name>_port, NULL when unknown
 *   REF    <name>: the key of the record it refers to
 *   PAD    no column
 * Before the fields come the columns every row of its table has (id, and
 * run, final, flags, guessed where the table has them) and t_ref, the
 * first of the record's reference times that happened. */

enum slc_kind { SLC_TIME, SLC_COUNT, SLC_INT, SLC_ENUM, SLC_MECH, SLC_ADDR, SLC_REF, SLC_PAD };

struct slc_field {
    uint8_t kind;   /* enum slc_kind */
    uint8_t size;   /* of the C field: 4 or 8 (or an address) */
    uint16_t off;   /* in the record's field struct */
    const char *name;
};

#define SLC_X_FIELD(kind, ctype, name, doc) \
    { SLC_##kind, sizeof(((SLC_FIELDS *)0)->name), offsetof(SLC_FIELDS, name), #name },
#define SLC_FIELDS struct obs_conn_fields
static const struct slc_field slc_conn_fields[] = { OBS_CONN_FIELDS(SLC_X_FIELD) };
#undef SLC_FIELDS
#define SLC_FIELDS struct obs_xchg_fields
static const struct slc_field slc_xchg_fields[] = { OBS_XCHG_FIELDS(SLC_X_FIELD) };
#undef SLC_FIELDS
#define SLC_FIELDS struct obs_udp_fields
static const struct slc_field slc_udp_fields[] = { OBS_UDP_FIELDS(SLC_X_FIELD) };
#undef SLC_FIELDS
#define SLC_FIELDS struct obs_dgram_fields
static const struct slc_field slc_dgram_fields[] = { OBS_DGRAM_FIELDS(SLC_X_FIELD) };
#undef SLC_FIELDS
#define SLC_FIELDS struct obs_wait_fields
static const struct slc_field slc_wait_fields[] = { OBS_WAIT_FIELDS(SLC_X_FIELD) };
#undef SLC_FIELDS

/* The leading columns a table has. */
enum { SLC_HAS_RUN = 1, SLC_HAS_FINAL = 2, SLC_HAS_FLAGS = 4, SLC_HAS_GUESSED = 8 };

#define SLC_REFS_MAX 5
#define SLC_OFF(type, name) offsetof(struct obs_##type##_fields, name)

/* The table of each record type (db/schema.sql).  refs: the times, in order
 * of preference, of which the first that happened is the row's t_ref;
 * kept_as_ref: a time the table keeps only as t_ref (no d_ column). */
static const struct slc_table {
    const char *name;
    unsigned lead;
    const struct slc_field *fields;
    int nfields;
    uint16_t refs[SLC_REFS_MAX];
    int nrefs;
    int kept_as_ref; /* offset, or -1 */
} slc_tables[OBS_REC_TYPE_MAX] = {
#define SLC_FIELDS_OF(type) slc_##type##_fields, (int)(sizeof slc_##type##_fields / sizeof(struct slc_field))
    [OBS_REC_CONN] = { "conns", SLC_HAS_RUN | SLC_HAS_FINAL | SLC_HAS_FLAGS, SLC_FIELDS_OF(conn),
                       { SLC_OFF(conn, t_connect), SLC_OFF(conn, t_resolve_start), SLC_OFF(conn, t_established),
                         SLC_OFF(conn, t_req_first), SLC_OFF(conn, t_close) }, 5, -1 },
    [OBS_REC_XCHG] = { "xchgs", SLC_HAS_FINAL | SLC_HAS_FLAGS, SLC_FIELDS_OF(xchg),
                       { SLC_OFF(xchg, t_req_first), SLC_OFF(xchg, t_req_last), SLC_OFF(xchg, t_resp_first) }, 3,
                       -1 },
    [OBS_REC_UDP] = { "udp_socks", SLC_HAS_RUN | SLC_HAS_FINAL, SLC_FIELDS_OF(udp),
                      { SLC_OFF(udp, t_first), SLC_OFF(udp, t_close) }, 2, SLC_OFF(udp, t_first) },
    [OBS_REC_DGRAM] = { "dgrams", SLC_HAS_GUESSED, SLC_FIELDS_OF(dgram), { SLC_OFF(dgram, t_send) }, 1,
                        SLC_OFF(dgram, t_send) },
    [OBS_REC_WAIT] = { "waits", SLC_HAS_RUN, SLC_FIELDS_OF(wait), { SLC_OFF(wait, t_enter) }, 1,
                       SLC_OFF(wait, t_enter) },
#undef SLC_FIELDS_OF
};

static uint64_t slc_field_u64(const struct obs_record *rec, const struct slc_field *f)
{
    const unsigned char *p = (const unsigned char *)&rec->u + f->off;
    if (f->size == 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    uint32_t v;
    memcpy(&v, p, 4);
    return f->kind == SLC_INT ? (uint64_t)(int64_t)(int32_t)v : v;
}

/* The record's reference time: the first of its table's refs that happened (0: none). */
static uint64_t slc_ref_time(const struct obs_record *rec)
{
    const struct slc_table *t = &slc_tables[rec->type];
    for (int i = 0; i < t->nrefs; i++) {
        uint64_t v;
        memcpy(&v, (const unsigned char *)&rec->u + t->refs[i], 8);
        if (v)
            return v;
    }
    return 0;
}

static int slc_field_has_column(const struct slc_table *t, const struct slc_field *f)
{
    return f->kind != SLC_PAD && f->off != t->kept_as_ref;
}

/* Appends the table's column list "(id, ..., t_ref, ...)" to sql; returns
 * the number of columns. */
static int slc_columns(const struct slc_table *t, char *sql, size_t len)
{
    size_t n = strlen(sql);
    int cols = 0;
#define SLC_PUT(...) (n += (size_t)snprintf(sql + n, n < len ? len - n : 0, __VA_ARGS__))
#define SLC_COL(...) (SLC_PUT(cols++ ? ", " : "("), SLC_PUT(__VA_ARGS__))
    SLC_COL("id");
    if (t->lead & SLC_HAS_RUN) SLC_COL("run");
    if (t->lead & SLC_HAS_FINAL) SLC_COL("final");
    if (t->lead & SLC_HAS_FLAGS) SLC_COL("flags");
    if (t->lead & SLC_HAS_GUESSED) SLC_COL("guessed");
    SLC_COL("t_ref");
    for (int i = 0; i < t->nfields; i++) {
        const struct slc_field *f = &t->fields[i];
        if (!slc_field_has_column(t, f))
            continue;
        if (f->kind == SLC_TIME) {
            SLC_COL("d_%s", f->name + 2);
        } else if (f->kind == SLC_MECH) {
            SLC_COL("mechanism");
        } else if (f->kind == SLC_ADDR) {
            SLC_COL("%s_addr", f->name);
            SLC_COL("%s_port", f->name);
        } else {
            SLC_COL("%s", f->name);
        }
    }
    SLC_PUT(")");
#undef SLC_COL
#undef SLC_PUT
    return cols;
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

static void bind_int_or_null(sqlite3_stmt *st, int i, int have, int64_t v)
{
    if (have)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* Binds a record's row from parameter p on, in slc_columns()' order; addr
 * keeps the text of its addresses until the statement has run. */
static void slc_bind_row(sqlite3_stmt *st, int p, int64_t run, const struct obs_record *rec, char addr[2][64])
{
    const struct slc_table *t = &slc_tables[rec->type];
    uint64_t ref = slc_ref_time(rec);
    int naddr = 0;
    sqlite3_bind_int64(st, p++, slc_key(run, rec->offset));
    if (t->lead & SLC_HAS_RUN) sqlite3_bind_int64(st, p++, run);
    if (t->lead & SLC_HAS_FINAL) sqlite3_bind_int(st, p++, rec->state == OBS_STATE_FINAL);
    if (t->lead & SLC_HAS_FLAGS) sqlite3_bind_int(st, p++, (int)rec->flags);
    if (t->lead & SLC_HAS_GUESSED) sqlite3_bind_int(st, p++, (rec->flags & OBS_RF_GUESSED) != 0);
    bind_int_or_null(st, p++, ref != 0, (int64_t)ref);
    for (int i = 0; i < t->nfields; i++) {
        const struct slc_field *f = &t->fields[i];
        if (!slc_field_has_column(t, f))
            continue;
        if (f->kind == SLC_ADDR) {
            bind_addr(st, p, (const struct obs_addr *)((const unsigned char *)&rec->u + f->off), addr[naddr++]);
            p += 2;
            continue;
        }
        uint64_t v = slc_field_u64(rec, f);
        switch (f->kind) {
        case SLC_TIME: bind_int_or_null(st, p, v && ref, (int64_t)(v - ref)); break;
        case SLC_REF: sqlite3_bind_int64(st, p, slc_key(run, v)); break;
        case SLC_MECH: sqlite3_bind_text(st, p, obs_mech_name((unsigned)v), -1, SQLITE_STATIC); break;
        default: sqlite3_bind_int64(st, p, (int64_t)v); break;
        }
        p++;
    }
}

/* ---- inserting ---------------------------------------------------------------
 * Rows are queued per table and inserted SLC_BATCH at a time by one
 * multi-row INSERT: one statement run (one cursor, one B-tree descent)
 * for the batch instead of one per row. */

/* Prepares a table's one-row and SLC_BATCH-row inserts. */
static int slc_prepare_table(struct slc_loader *L, enum obs_rec_type type)
{
    struct slc_queue *q = &L->queue[type];
    size_t len = 2048 + SLC_BATCH * (2 * 64 + 4);
    char *sql = malloc(len);
    if (!sql)
        return -1;
    int rc = 0;
    for (int rows = 1; rows <= SLC_BATCH && rc == 0; rows += SLC_BATCH - 1) {
        snprintf(sql, len, "INSERT OR REPLACE INTO %s ", slc_tables[type].name);
        q->ncols = slc_columns(&slc_tables[type], sql, len);
        size_t n = strlen(sql);
        n += (size_t)snprintf(sql + n, len - n, " VALUES ");
        for (int r = 0; r < rows; r++) {
            n += (size_t)snprintf(sql + n, len - n, "%s(?", r ? "," : "");
            for (int c = 1; c < q->ncols; c++)
                n += (size_t)snprintf(sql + n, len - n, ",?");
            n += (size_t)snprintf(sql + n, len - n, ")");
        }
        rc = n < len ? sqlite3_prepare_v3(L->db, sql, -1, SQLITE_PREPARE_PERSISTENT, rows == 1 ? &q->one : &q->many,
                                          NULL)
                     : SQLITE_TOOBIG;
    }
    free(sql);
    return rc == SQLITE_OK ? 0 : -1;
}

/* Inserts the queued rows of a table. */
static int slc_flush(struct slc_loader *L, enum obs_rec_type type)
{
    struct slc_queue *q = &L->queue[type];
    int rc = 0;
    if (q->n == SLC_BATCH) {
        for (int i = 0; i < q->n; i++)
            slc_bind_row(q->many, 1 + i * q->ncols, q->run, &q->rec[i], q->addr[i]);
        rc = slc_step(L, q->many, "inserting records");
    } else {
        for (int i = 0; i < q->n && rc == 0; i++) {
            slc_bind_row(q->one, 1, q->run, &q->rec[i], q->addr[i]);
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
        keep = slc_passes(L, &rec->u.conn.peer, (int)rec->u.conn.side, slc_ref_time(rec));
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

/* ---- progress ------------------------------------------------------------------
 * On a terminal, a load of more than SLC_PROGRESS_AFTER seconds shows one
 * line, redrawn twice a second: records, rate, how much of the logs' bytes
 * are done and the time left at the rate so far. */
#define SLC_PROGRESS_AFTER 2.0

static double slc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void slc_progress(struct slc_loader *L, int final)
{
    double now = slc_now(), took = now - L->started;
    if (!final && (took < SLC_PROGRESS_AFTER || now - L->shown < 0.5))
        return;
    if (final && L->shown == 0)
        return; /* short: nothing was shown */
    L->shown = now;
    uint64_t done = L->bytes_done + (L->r.data ? L->r.pos : 0);
    if (done > L->bytes_total)
        done = L->bytes_total;
    double rate = L->records_seen / (took > 0 ? took : 1), left = 0;
    if (done > 0 && L->bytes_total > done)
        left = took * (double)(L->bytes_total - done) / (double)done;
    fprintf(stderr, "\r%s: %llu records, %.0f/s, %.0f of %.0f MiB", slc_prog, (unsigned long long)L->records_seen,
            rate, done / 1048576.0, L->bytes_total / 1048576.0);
    if (final)
        fprintf(stderr, ", done in %.1f s%20s\n", took, ""); /* over what the last line had */
    else
        fprintf(stderr, ", about %.0f s left   ", left);
}

static int slc_record(struct slc_loader *L, const struct obs_record *rec)
{
    if (L->o->progress && (++L->records_seen & 0xFFFF) == 0)
        slc_progress(L, 0);
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

/* The bytes of the logs a load will read, for its progress line. */
static uint64_t slc_bytes_to_load(char *const *paths, int npaths)
{
    uint64_t total = 0;
    for (int p = 0; p < npaths; p++) {
        char *one[2] = { paths[p], NULL };
        FTS *fts = fts_open(one, FTS_PHYSICAL | FTS_NOCHDIR | FTS_COMFOLLOW, NULL);
        FTSENT *e;
        while (fts && (e = fts_read(fts)) != NULL)
            if (e->fts_info == FTS_F && (e->fts_level == 0 || is_log_name(e->fts_name)))
                total += (uint64_t)e->fts_statp->st_size;
        if (fts)
            fts_close(fts);
    }
    return total;
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
                if (e->fts_level == 0 || is_log_name(e->fts_name)) {
                    slc_load_log(L, e->fts_path);
                    L->bytes_done += (uint64_t)e->fts_statp->st_size;
                }
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
    if (o->progress) {
        L.started = slc_now();
        L.bytes_total = slc_bytes_to_load(paths, npaths);
    }
    slc_walk(&L, paths, npaths);
    if (o->progress)
        slc_progress(&L, 1);
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
