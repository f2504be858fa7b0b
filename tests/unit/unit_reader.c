/* unit_reader.c — the log reader (common/obs_reader.c) on logs built in
 * memory: whole records come back with their fields, and every kind of
 * damage is reported once, with the valid records around it still read. */
#include <stdlib.h>
#include <string.h>

#include "../../common/obs_reader.h"
#include "unit.h"

#define LOG_UNITS 64

struct mem_log {
    unsigned char bytes[OBS_HEADER_SIZE + LOG_UNITS * OBS_UNIT];
    uint64_t used; /* record bytes written */
};

static struct obs_file_header *hdr(struct mem_log *m) { return (struct obs_file_header *)m->bytes; }

static void log_init(struct mem_log *m, uint32_t version)
{
    memset(m, 0, sizeof *m);
    struct obs_file_header *h = hdr(m);
    h->magic = OBS_MAGIC;
    h->byte_order = OBS_BYTE_ORDER;
    h->version = version;
    h->header_size = OBS_HEADER_SIZE;
    h->unit = OBS_UNIT;
    h->capacity = LOG_UNITS * OBS_UNIT;
    h->pid = 4242;
    strcpy(h->exe, "unit");
    h->header_crc = obs_checksum_of_version(version, m->bytes + OBS_IDENTITY_BEGIN, OBS_IDENTITY_END - OBS_IDENTITY_BEGIN);
}

/* Appends a record; returns its offset.  state 0: reserved, never written. */
static uint64_t log_add(struct mem_log *m, enum obs_rec_type type, uint16_t state, const void *fields, size_t len)
{
    uint64_t at = OBS_HEADER_SIZE + m->used;
    struct obs_rec_hdr *r = (struct obs_rec_hdr *)(m->bytes + at);
    if (state) {
        memcpy(r + 1, fields, len);
        r->tag = OBS_TAG(type);
        r->units = obs_rec_units[type];
        r->state = state;
        r->crc = state == OBS_STATE_FINAL ? obs_checksum_of_version(hdr(m)->version, fields, len) : 0;
    }
    m->used += (uint64_t)obs_rec_units[type] * OBS_UNIT;
    hdr(m)->reserved = m->used;
    return at;
}

static struct obs_conn_fields a_conn(uint64_t t0)
{
    struct obs_conn_fields c = { 0 };
    c.t_connect = t0;
    c.t_established = t0 + 100;
    c.t_req_first = t0 + 200;
    c.t_resp_end = t0 + 900;
    c.t_close = t0 + 1000;
    c.bytes_sent = 77;
    c.peer.family = 2;
    c.peer.port = 8080;
    c.exchanges = 1;
    return c;
}

static int open_mem(struct obs_log_reader *r, struct mem_log *m, size_t size)
{
    return obs_reader_open_mem(r, "mem.olog", m->bytes, size);
}

UNIT(records_come_back_whole_in_order)
{
    static struct mem_log m;
    log_init(&m, OBS_VERSION);
    struct obs_conn_fields c = a_conn(1000);
    uint64_t at = log_add(&m, OBS_REC_CONN, OBS_STATE_FINAL, &c, sizeof c);
    struct obs_xchg_fields x = { .conn = at, .t_req_first = 1200, .t_resp_first = 1500, .seq = 1 };
    log_add(&m, OBS_REC_XCHG, OBS_STATE_OPEN, &x, sizeof x);
    struct obs_log_reader r;
    CHECK(open_mem(&r, &m, sizeof m.bytes) == 0 && r.warn[0] == '\0' && r.hdr.pid == 4242);
    struct obs_record rec;
    CHECK(obs_reader_next(&r, &rec) == 1 && rec.type == OBS_REC_CONN && rec.offset == at);
    CHECK(rec.state == OBS_STATE_FINAL && !memcmp(&rec.u.conn, &c, sizeof c));
    CHECK(obs_reader_next(&r, &rec) == 1 && rec.type == OBS_REC_XCHG && rec.state == OBS_STATE_OPEN);
    CHECK(rec.u.xchg.conn == at && rec.u.xchg.t_resp_first == 1500);
    CHECK(obs_reader_next(&r, &rec) == 0); /* only what the header says was reserved */
    CHECK(r.torn == 0 && r.damaged == 0);
    obs_reader_close(&r);
}

UNIT(damage_is_reported_and_the_records_around_it_read)
{
    static struct mem_log m;
    log_init(&m, OBS_VERSION);
    struct obs_conn_fields c = a_conn(1000);
    log_add(&m, OBS_REC_CONN, OBS_STATE_FINAL, &c, sizeof c);
    uint64_t bad = log_add(&m, OBS_REC_CONN, OBS_STATE_FINAL, &c, sizeof c);
    m.bytes[bad + sizeof(struct obs_rec_hdr) + 3] ^= 0x10;  /* a flipped bit in a final record */
    log_add(&m, OBS_REC_CONN, 0, NULL, 0);                   /* reserved, never written */
    uint64_t junk = log_add(&m, OBS_REC_CONN, OBS_STATE_FINAL, &c, sizeof c);
    memcpy(m.bytes + junk, "garbage!", 8);                   /* a header that is no header */
    uint64_t last = log_add(&m, OBS_REC_CONN, OBS_STATE_FINAL, &c, sizeof c);

    struct obs_log_reader r;
    CHECK(open_mem(&r, &m, sizeof m.bytes) == 0);
    struct obs_record rec;
    int good = 0, problems = 0, rc;
    uint64_t seen_last = 0;
    while ((rc = obs_reader_next(&r, &rec)) != 0) {
        if (rc > 0) {
            good++;
            seen_last = rec.offset;
        } else {
            problems++;
        }
    }
    CHECK(good == 2 && seen_last == last);
    CHECK(problems == 3 && r.damaged == 2 && r.torn == 1);
    obs_reader_close(&r);
}

UNIT(a_log_cut_short_warns_and_its_last_record_is_torn)
{
    static struct mem_log m;
    log_init(&m, OBS_VERSION);
    struct obs_conn_fields c = a_conn(1000);
    log_add(&m, OBS_REC_CONN, OBS_STATE_FINAL, &c, sizeof c);
    log_add(&m, OBS_REC_CONN, OBS_STATE_FINAL, &c, sizeof c);
    struct obs_log_reader r;
    CHECK(open_mem(&r, &m, OBS_HEADER_SIZE + 4 * OBS_UNIT + 100) == 0);
    CHECK(strstr(r.warn, "truncated") != NULL);
    struct obs_record rec;
    CHECK(obs_reader_next(&r, &rec) == 1);
    CHECK(obs_reader_next(&r, &rec) == -1 && strstr(r.msg, "torn last record"));
    CHECK(obs_reader_next(&r, &rec) == 0);
    obs_reader_close(&r);
}

UNIT(headers_that_are_not_logs_are_refused)
{
    static struct mem_log m;
    struct obs_log_reader r;
    log_init(&m, OBS_VERSION);
    CHECK(open_mem(&r, &m, 100) == -1 && strstr(r.msg, "too short"));
    hdr(&m)->magic = 0x12345678;
    CHECK(open_mem(&r, &m, sizeof m.bytes) == -1);
    log_init(&m, OBS_VERSION + 1);
    CHECK(open_mem(&r, &m, sizeof m.bytes) == -1 && strstr(r.msg, "unknown log format version"));
    log_init(&m, OBS_VERSION);
    hdr(&m)->pid = 1; /* identity changed after its checksum */
    CHECK(open_mem(&r, &m, sizeof m.bytes) == 0 && r.header_damaged && strstr(r.warn, "checksum"));
    obs_reader_close(&r);
}

UNIT(a_version_1_connection_is_read_in_version_2_terms)
{
    static struct mem_log m;
    log_init(&m, 1);
    struct obs_conn_fields c = a_conn(1000);
    c.t_resp_last = 1800; /* version 1: the last recv of any exchange */
    c.exchanges = 3;
    log_add(&m, OBS_REC_CONN, OBS_STATE_FINAL, &c, OBS_CONN_FIELDS_V1_SIZE);
    struct obs_log_reader r;
    CHECK(open_mem(&r, &m, sizeof m.bytes) == 0);
    struct obs_record rec;
    CHECK(obs_reader_next(&r, &rec) == 1);
    CHECK(rec.u.conn.t_resp_end == 1800 && rec.u.conn.t_resp_last == 0);
    obs_reader_close(&r);
}
