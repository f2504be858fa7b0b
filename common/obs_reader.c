/* obs_reader.c — checks and walks a libobserve log (see obs_reader.h).
 *
 * The file is read through a window of OBS_WINDOW bytes, so a log of any
 * size costs the same memory; a log in memory can be walked too (the fuzz
 * target does).  A live log can be read while its process still writes: we
 * take the reserved extent as it is when we open it.
 */
#define _GNU_SOURCE
#include "obs_reader.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(sizeof(struct obs_addr) == 20, "obs_addr is packed");
_Static_assert(sizeof(struct obs_conn_fields) == 184, "conn fields have no padding");
_Static_assert(OBS_CONN_FIELDS_V1_SIZE == 176, "version 1 conn fields");
_Static_assert(sizeof(struct obs_xchg_fields) == 72, "xchg fields have no padding");
_Static_assert(sizeof(struct obs_udp_fields) == 120, "udp fields have no padding");
_Static_assert(sizeof(struct obs_dgram_fields) == 64, "dgram fields have no padding");
_Static_assert(sizeof(struct obs_wait_fields) == 32, "wait fields have no padding");
_Static_assert(sizeof(struct obs_file_header) <= OBS_HEADER_SIZE, "header fits");

static const size_t obs_fields_size[OBS_REC_TYPE_MAX] = {
    [OBS_REC_CONN] = sizeof(struct obs_conn_fields),   [OBS_REC_XCHG] = sizeof(struct obs_xchg_fields),
    [OBS_REC_UDP] = sizeof(struct obs_udp_fields),     [OBS_REC_DGRAM] = sizeof(struct obs_dgram_fields),
    [OBS_REC_WAIT] = sizeof(struct obs_wait_fields),
};

/* A version 1 connection's t_resp_last was its last response byte of any
 * exchange: that is t_resp_end now, and the first exchange's own last byte
 * is known only when it was the only one (else it is in its xchg record). */
static void obs_conn_from_v1(struct obs_conn_fields *c)
{
    c->t_resp_end = c->t_resp_last;
    if (c->exchanges > 1)
        c->t_resp_last = 0;
}

__attribute__((format(printf, 2, 3))) static int obs_fail(struct obs_log_reader *r, const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(r->msg, sizeof r->msg, "%s: %s", r->path, detail);
    return -1;
}

/* The bytes [pos, pos + len) of the log, read into the window if they are
 * not there yet; NULL if the file no longer holds them (it shrank, or a read
 * failed), in which case the walk ends there. */
static const unsigned char *obs_at(struct obs_log_reader *r, uint64_t pos, size_t len)
{
    if (pos >= r->base && pos + len <= r->base + r->have)
        return r->data + (pos - r->base);
    if (r->fd < 0)
        return NULL;
    uint64_t want = r->end - pos < OBS_WINDOW ? r->end - pos : OBS_WINDOW;
    uint64_t got = 0;
    while (got < want) {
        ssize_t n = pread(r->fd, r->data + got, want - got, (off_t)(pos + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (uint64_t)n;
    }
    r->base = pos;
    r->have = got;
    if (got < len) {
        r->end = pos + got; /* the file is shorter than it was: stop there */
        return NULL;
    }
    return r->data;
}

/* Checks the header and sets up the walk of a file of `size` bytes. */
static int obs_reader_check(struct obs_log_reader *r, uint64_t size)
{
    const unsigned char *p = obs_at(r, 0, OBS_HEADER_SIZE);
    if (!p)
        return obs_fail(r, "cannot read header: %s", strerror(errno ? errno : EIO));
    memcpy(&r->hdr, p, sizeof r->hdr);
    const struct obs_file_header *h = &r->hdr;
    if (h->magic != OBS_MAGIC) {
        if (h->magic == __builtin_bswap32(OBS_MAGIC))
            return obs_fail(r, "written on a machine of the other byte order");
        if (h->magic == 0)
            return obs_fail(r, "header not written (the process died while creating its log)");
        return obs_fail(r, "not an observe log (bad magic number)");
    }
    if (h->version < 1 || h->version > OBS_VERSION)
        return obs_fail(r, "unknown log format version %u (this reader knows versions 1 to %u)", h->version,
                        OBS_VERSION);
    if (h->byte_order != OBS_BYTE_ORDER || h->header_size != OBS_HEADER_SIZE || h->unit != OBS_UNIT)
        return obs_fail(r, "damaged header (byte order, header size or unit)");
    r->header_damaged =
        obs_checksum_of_version(h->version, (const char *)h + OBS_IDENTITY_BEGIN, OBS_IDENTITY_END - OBS_IDENTITY_BEGIN) !=
        h->header_crc;
    r->pos = OBS_HEADER_SIZE;
    /* Walk only what the header says was reserved (the rest of a live log is
     * preallocated zeros), unless that count is itself damaged. */
    uint64_t want = OBS_HEADER_SIZE + h->reserved;
    if (h->reserved > (1ull << 40) || h->reserved % OBS_UNIT)
        want = size;
    r->end = want < size ? want : size;
    if (want > size) {
        r->torn++;
        snprintf(r->warn, sizeof r->warn, "%s: truncated: %" PRIu64 " bytes of records reserved, %" PRIu64 " present",
                 r->path, want - OBS_HEADER_SIZE, size - OBS_HEADER_SIZE);
    }
    if (r->header_damaged) {
        size_t used = strlen(r->warn);
        snprintf(r->warn + used, sizeof r->warn - used, "%s%s: header identity fails its checksum (process facts may be wrong)",
                 used ? "; " : "", used ? "and" : r->path);
    }
    return 0;
}

int obs_reader_open(struct obs_log_reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    snprintf(r->path, sizeof r->path, "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return obs_fail(r, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return obs_fail(r, "not a regular file");
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size == 0) {
        close(fd);
        return obs_fail(r, "empty file, not an observe log");
    }
    if (size < OBS_HEADER_SIZE) {
        close(fd);
        return obs_fail(r, "too short to be an observe log (%" PRIu64 " bytes, a log has at least %u)", size,
                        OBS_HEADER_SIZE);
    }
    r->fd = fd;
    r->end = size;
    r->data = malloc(OBS_WINDOW);
    if (!r->data) {
        obs_reader_close(r);
        return obs_fail(r, "out of memory");
    }
    r->owned = 1;
    if (obs_reader_check(r, size) != 0) {
        obs_reader_close(r);
        return -1;
    }
    return 0;
}

int obs_reader_open_mem(struct obs_log_reader *r, const char *name, const void *data, size_t size)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    snprintf(r->path, sizeof r->path, "%s", name);
    if (size == 0)
        return obs_fail(r, "empty file, not an observe log");
    if (size < OBS_HEADER_SIZE)
        return obs_fail(r, "too short to be an observe log (%zu bytes, a log has at least %u)", size,
                        OBS_HEADER_SIZE);
    r->data = (unsigned char *)data;
    r->end = r->have = size;
    if (obs_reader_check(r, size) != 0) {
        r->data = NULL;
        return -1;
    }
    return 0;
}

int obs_reader_seek(struct obs_log_reader *r, uint64_t offset)
{
    if (offset < OBS_HEADER_SIZE || offset % OBS_UNIT || offset > r->end)
        return -1;
    r->pos = offset;
    return 0;
}

/* The record header at pos, or NULL past the end. */
static const struct obs_rec_hdr *obs_hdr_at(struct obs_log_reader *r, uint64_t pos)
{
    if (pos + sizeof(struct obs_rec_hdr) > r->end)
        return NULL;
    return (const struct obs_rec_hdr *)obs_at(r, pos, sizeof(struct obs_rec_hdr));
}

/* Find the next unit that starts a plausible record header. */
static void obs_resync(struct obs_log_reader *r)
{
    const struct obs_rec_hdr *h;
    r->pos += OBS_UNIT;
    while ((h = obs_hdr_at(r, r->pos)) != NULL) {
        if ((h->tag & 0xFFFF0000u) == OBS_TAG_BASE)
            return;
        r->pos += OBS_UNIT;
    }
    if (r->pos > r->end)
        r->pos = r->end;
}

/* Skip the run of units from pos whose header words are all zero. */
static void obs_skip_unwritten(struct obs_log_reader *r)
{
    const struct obs_rec_hdr *h;
    do
        r->pos += OBS_UNIT;
    while ((h = obs_hdr_at(r, r->pos)) != NULL && h->tag == 0 && h->units == 0 && h->state == 0);
    if (r->pos > r->end)
        r->pos = r->end;
}

int obs_reader_next(struct obs_log_reader *r, struct obs_record *rec)
{
    const struct obs_rec_hdr *h;
    while ((h = obs_hdr_at(r, r->pos)) != NULL) {
        uint64_t at = r->pos;
        if (h->tag == 0 && h->units == 0 && h->state == 0) {
            /* reserved, never published: skip the whole run of such units
             * (and only those: what follows is judged on its own) */
            obs_skip_unwritten(r);
            r->torn++;
            return obs_fail(r, "torn record at offset %" PRIu64 " (%" PRIu64 " bytes reserved but never written)",
                            at, r->pos - at);
        }
        uint32_t type = h->tag - OBS_TAG_BASE;
        if ((h->tag & 0xFFFF0000u) != OBS_TAG_BASE || type == 0 || type >= OBS_REC_TYPE_MAX ||
            h->units != obs_rec_units[type] || (h->state != 0 && h->state != OBS_STATE_OPEN && h->state != OBS_STATE_FINAL)) {
            obs_resync(r);
            r->damaged++;
            return obs_fail(r, "damaged record header at offset %" PRIu64 " (skipped %" PRIu64 " bytes)", at,
                            r->pos - at);
        }
        uint64_t len = (uint64_t)h->units * OBS_UNIT;
        if (at + len > r->end || !(h = (const void *)obs_at(r, at, len))) {
            uint64_t end = r->end;
            r->pos = r->end;
            r->torn++;
            return obs_fail(r, "torn last record at offset %" PRIu64 " (the file ends %" PRIu64 " bytes into it)",
                            at, end - at);
        }
        r->pos = at + len;
        if (h->state == 0) {
            r->torn++;
            return obs_fail(r, "torn record at offset %" PRIu64 " (header never published)", at);
        }
        size_t fsz = obs_fields_size[type];
        if (type == OBS_REC_CONN && r->hdr.version == 1)
            fsz = OBS_CONN_FIELDS_V1_SIZE;
        if (h->state == OBS_STATE_FINAL && obs_checksum_of_version(r->hdr.version, h + 1, fsz) != h->crc) {
            r->damaged++;
            return obs_fail(r, "%s record at offset %" PRIu64 " fails its checksum (damaged)",
                            obs_rec_names[type], at);
        }
        rec->type = (enum obs_rec_type)type;
        rec->offset = at;
        rec->state = h->state;
        rec->flags = h->flags;
        memset(&rec->u, 0, sizeof rec->u);
        memcpy(&rec->u, h + 1, fsz);
        if (type == OBS_REC_CONN && r->hdr.version == 1)
            obs_conn_from_v1(&rec->u.conn);
        return 1;
    }
    return 0;
}

void obs_reader_close(struct obs_log_reader *r)
{
    if (r->owned)
        free(r->data);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->data = NULL;
    r->owned = 0;
}

/* ---- text forms --------------------------------------------------------- */

#define OBS_X_MECH_NAME(id, name) name,
static const char *const obs_mech_names[] = { OBS_MECHS(OBS_X_MECH_NAME) };

const char *obs_mech_name(unsigned mech)
{
    return mech < OBS_MECH_COUNT ? obs_mech_names[mech] : "unknown";
}

/* Dotted quad without printf: the slicer formats millions of these. */
static void obs_ipv4(const uint8_t *b, char *buf, size_t len)
{
    char tmp[16], *p = tmp;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = i < 3 ? '.' : '\0';
    }
    if ((size_t)(p - tmp) <= len)
        memcpy(buf, tmp, (size_t)(p - tmp));
    else if (len)
        buf[0] = '\0';
}

void obs_addr_ip(const struct obs_addr *a, char *buf, size_t len)
{
    if (a->family == AF_INET)
        obs_ipv4(a->addr, buf, len);
    else if (a->family == AF_INET6)
        inet_ntop(AF_INET6, a->addr, buf, (socklen_t)len);
    else
        snprintf(buf, len, "-");
}

void obs_addr_format(const struct obs_addr *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    obs_addr_ip(a, ip, sizeof ip);
    if (a->family == AF_INET)
        snprintf(buf, len, "%s:%u", ip, a->port);
    else if (a->family == AF_INET6)
        snprintf(buf, len, "[%s]:%u", ip, a->port);
    else
        snprintf(buf, len, "-");
}

void obs_fprint_escaped(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void obs_print_value_TIME(FILE *f, uint64_t v)
{
    if (v)
        fprintf(f, "%" PRIu64, v);
    else
        fputc('-', f);
}
static void obs_print_value_COUNT(FILE *f, uint64_t v) { fprintf(f, "%" PRIu64, v); }
static void obs_print_value_REF(FILE *f, uint64_t v) { fprintf(f, "%" PRIu64, v); }
static void obs_print_value_ENUM(FILE *f, uint64_t v) { fprintf(f, "%" PRIu64, v); }
static void obs_print_value_INT(FILE *f, int64_t v) { fprintf(f, "%" PRId64, v); }
static void obs_print_value_MECH(FILE *f, uint64_t v) { fputs(obs_mech_name((unsigned)v), f); }
static void obs_print_value_ADDR(FILE *f, struct obs_addr a)
{
    char buf[64];
    obs_addr_format(&a, buf, sizeof buf);
    fputs(buf, f);
}

#define OBS_X_PRINT(kind, ctype, name, doc) OBS_X_PRINT_##kind(name)
#define OBS_X_PRINT_VALUE(kind, name) \
    fputs(" " #name "=", f);        \
    obs_print_value_##kind(f, p->name);
#define OBS_X_PRINT_TIME(name) OBS_X_PRINT_VALUE(TIME, name)
#define OBS_X_PRINT_COUNT(name) OBS_X_PRINT_VALUE(COUNT, name)
#define OBS_X_PRINT_INT(name) OBS_X_PRINT_VALUE(INT, name)
#define OBS_X_PRINT_ENUM(name) OBS_X_PRINT_VALUE(ENUM, name)
#define OBS_X_PRINT_MECH(name) OBS_X_PRINT_VALUE(MECH, name)
#define OBS_X_PRINT_ADDR(name) OBS_X_PRINT_VALUE(ADDR, name)
#define OBS_X_PRINT_REF(name) OBS_X_PRINT_VALUE(REF, name)
#define OBS_X_PRINT_PAD(name) /* no value */

static void obs_print_ms(FILE *f, const char *name, uint64_t from, uint64_t to)
{
    if (from && to && to >= from)
        fprintf(f, " %s=%.3f", name, (double)(to - from) / 1e6);
    else
        fprintf(f, " %s=-", name);
}

#define OBS_X_PRINT_PERIOD(name, from, to, doc) obs_print_ms(f, #name, p->from, p->to);

void obs_fprint_record(FILE *f, const struct obs_record *rec)
{
    fprintf(f, "%s offset=%" PRIu64 " state=%s flags=0x%x", obs_rec_names[rec->type], rec->offset,
            rec->state == OBS_STATE_FINAL ? "final" : "open", rec->flags);
    switch (rec->type) {
    case OBS_REC_CONN: {
        const struct obs_conn_fields *p = &rec->u.conn;
        OBS_CONN_FIELDS(OBS_X_PRINT)
        OBS_CONN_PERIODS(OBS_X_PRINT_PERIOD)
        break;
    }
    case OBS_REC_XCHG: {
        const struct obs_xchg_fields *p = &rec->u.xchg;
        OBS_XCHG_FIELDS(OBS_X_PRINT)
        OBS_XCHG_PERIODS(OBS_X_PRINT_PERIOD)
        break;
    }
    case OBS_REC_UDP: {
        const struct obs_udp_fields *p = &rec->u.udp;
        OBS_UDP_FIELDS(OBS_X_PRINT)
        break;
    }
    case OBS_REC_DGRAM: {
        const struct obs_dgram_fields *p = &rec->u.dgram;
        OBS_DGRAM_FIELDS(OBS_X_PRINT)
        obs_print_ms(f, "response_ms", p->t_send, p->t_recv);
        break;
    }
    case OBS_REC_WAIT: {
        const struct obs_wait_fields *p = &rec->u.wait;
        OBS_WAIT_FIELDS(OBS_X_PRINT)
        fprintf(f, " mechanism=%s", obs_mech_name(p->mech));
        break;
    }
    default:
        break;
    }
    fputc('\n', f);
}

void obs_fprint_header(FILE *f, const struct obs_log_reader *r)
{
    const struct obs_file_header *h = &r->hdr;
    fprintf(f, "log version=%u pid=%d ppid=%d uid=%u run_id=", h->version, h->pid, h->ppid, h->uid);
    for (int i = 0; i < 16; i++)
        fprintf(f, "%02x", h->run_id[i]);
    fprintf(f, " anchor_realtime_ns=%" PRId64 " anchor_monotonic_ns=%" PRId64 " wait_mode=%s",
            h->anchor_realtime_ns, h->anchor_monotonic_ns, h->wait_mode ? "all" : "aggregate");
    fputs(" host=", f);
    obs_fprint_escaped(f, h->hostname, sizeof h->hostname);
    fputs(" boot_id=", f);
    obs_fprint_escaped(f, h->boot_id, sizeof h->boot_id);
    fputs(" exe=", f);
    obs_fprint_escaped(f, h->exe, sizeof h->exe);
    fputs(" tags=", f);
    obs_fprint_escaped(f, h->tags, sizeof h->tags);
    fputs(" args=[", f);
    for (uint32_t i = 0; i < h->args_len && i < sizeof h->args;) {
        size_t n = strnlen(h->args + i, sizeof h->args - i);
        if (i)
            fputc(' ', f);
        obs_fprint_escaped(f, h->args + i, n);
        i += (uint32_t)n + 1;
    }
    fprintf(f, "] reserved=%" PRIu64 "\n", h->reserved);
#define OBS_X_PRINT_COUNTER(name, doc) fprintf(f, " " #name "=%" PRIu64, h->counters.name);
    fputs("counters", f);
    OBS_COUNTERS(OBS_X_PRINT_COUNTER)
    fputc('\n', f);
    for (unsigned m = 0; m < OBS_MECH_COUNT; m++) {
        const struct obs_wait_agg *a = &h->waits[m];
        if (!a->calls)
            continue;
        fprintf(f,
                "waits mechanism=%s calls=%" PRIu64 " interest_sum=%" PRIu64 " ready_sum=%" PRIu64
                " blocked_ns=%" PRIu64 " blocked_max_ns=%" PRIu64 " errors=%" PRIu64 "\n",
                obs_mech_name(m), a->calls, a->interest_sum, a->ready_sum, a->blocked_ns, a->blocked_max_ns,
                a->errors);
    }
}
