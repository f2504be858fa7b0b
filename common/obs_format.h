/* obs_format.h — the on-disk log format of libobserve, defined once.
 *
 * A log is one file per process: a fixed 4 KiB header, then records in
 * 64-byte units.  The writer (preload/) maps the file MAP_SHARED and fills
 * records in place, so every store survives the process being killed; the
 * reader (common/obs_reader.c) and everything built on it (dump, SQL columns)
 * are generated from the same X-macro field lists below.
 *
 * Conventions: native byte order (the header's byte_order word reveals a
 * foreign one), times are CLOCK_MONOTONIC nanoseconds and 0 means "did not
 * happen" (the reader turns it into absent/NULL), record ids are their file
 * offsets.
 */
#ifndef OBS_FORMAT_H
#define OBS_FORMAT_H

#include <stdint.h>
#include <stddef.h>

#define OBS_MAGIC        0x4C53424Fu /* "OBSL" when read as little-endian */
#define OBS_BYTE_ORDER   0x01020304u
#define OBS_VERSION      3u /* 2: conn.t_resp_end; conn T2-T5 of the first exchange; 3: obs_checksum's full final mix */
#define OBS_HEADER_SIZE  4096u
#define OBS_UNIT         64u

/* A socket address, compact and family-tagged (AF_INET or AF_INET6). */
struct obs_addr {
    uint16_t family;   /* AF_INET, AF_INET6, or 0 when unknown */
    uint16_t port;     /* host byte order */
    uint8_t  addr[16]; /* IPv4 in the first 4 bytes */
};

/* ---- record header ------------------------------------------------------
 * The first 8 bytes (tag, units, state) are published with one atomic
 * release store, so a reader sees either nothing (zeros) or a whole header.
 * state: OPEN while the writer may still update the record in place (the
 * connection is live, or the process died), FINAL once closed, with crc set
 * over the record's fields.
 */
struct obs_rec_hdr {
    uint32_t tag;    /* OBS_TAG(type) */
    uint16_t units;  /* slot size in OBS_UNIT units */
    uint16_t state;  /* OBS_STATE_* */
    uint32_t crc;    /* obs_checksum() of the field block, when FINAL */
    uint32_t flags;  /* OBS_RF_* */
};

#define OBS_TAG_BASE   0x4F620000u
#define OBS_TAG(type)  (OBS_TAG_BASE | (uint32_t)(type))
#define OBS_STATE_OPEN  1u
#define OBS_STATE_FINAL 2u

enum obs_rec_type {
    OBS_REC_CONN  = 1, /* one TCP connection (client connect or server accept) */
    OBS_REC_XCHG  = 2, /* one request/response exchange on a TCP connection */
    OBS_REC_UDP   = 3, /* one datagram socket */
    OBS_REC_DGRAM = 4, /* one datagram sent to a peer and its answer, if any */
    OBS_REC_WAIT  = 5, /* one event wait call (only with OBSERVE_WAITS=all) */
    OBS_REC_TYPE_MAX
};

/* Slot size of each record type, in units: the writer's slot (fields plus
 * its private runtime state) fits in it; the reader insists on it. */
static const uint16_t obs_rec_units[OBS_REC_TYPE_MAX] = {
    [OBS_REC_CONN] = 4, [OBS_REC_XCHG] = 2, [OBS_REC_UDP] = 7, [OBS_REC_DGRAM] = 2, [OBS_REC_WAIT] = 1,
};
static const char *const obs_rec_names[OBS_REC_TYPE_MAX] = {
    [OBS_REC_CONN] = "conn", [OBS_REC_XCHG] = "xchg", [OBS_REC_UDP] = "udp",
    [OBS_REC_DGRAM] = "dgram", [OBS_REC_WAIT] = "wait",
};

/* Record flags (obs_rec_hdr.flags). */
#define OBS_RF_NONBLOCK   0x01u /* connect was non-blocking (EINPROGRESS) */
#define OBS_RF_INHERITED  0x02u /* socket inherited across fork: no t_connect */
#define OBS_RF_FAILED     0x04u /* connect failed (connect_errno says why) */
#define OBS_RF_DUPED      0x08u /* the socket had more than one descriptor */
#define OBS_RF_GUESSED    0x10u /* datagram answer matched without a source address */
#define OBS_RF_GAVE_UP    0x20u /* conn: closed while its connect was in progress (also FAILED) */
#define OBS_RF_EXIT       0x40u /* conn, udp: still open at exit(); t_close is the exit's time */
#define OBS_RF_OVERLAP    0x80u /* xchg: the response began before the request's last send
                                 * returned (another thread reads); t_req_last is cut to
                                 * t_resp_first */

/* ---- field lists ---------------------------------------------------------
 * X(kind, ctype, name, doc).  Kinds tell the reader, dump and the slicer's
 * columns (slicer/slc_load.c) how to show a field: TIME (monotonic ns, 0 =
 * absent), COUNT, INT, ENUM, MECH (an OBS_MECH_*), ADDR, REF (offset of
 * another record in the same file), PAD (no value).  A new field is one
 * line here and its column in db/schema.sql.  Order is chosen so that the C
 * struct has no padding (checked by static asserts in obs_reader.c).
 */
#define OBS_CONN_FIELDS(X) \
    X(TIME,  uint64_t, t_resolve_start, "getaddrinfo() entered for the name that gave the peer address") \
    X(TIME,  uint64_t, t_resolve_end,   "that getaddrinfo() returned") \
    X(TIME,  uint64_t, t_connect,       "connect() entered (server side: accept() returned)") \
    X(TIME,  uint64_t, t_established,   "connection known to be up (docs/design.md, \"Connection setup\")") \
    X(TIME,  uint64_t, t_req_first,     "first exchange: entry of its first send that moved bytes") \
    X(TIME,  uint64_t, t_req_last,      "first exchange: return of its last send (at most t_resp_first)") \
    X(TIME,  uint64_t, t_resp_ready,    "first exchange: return of the event wait that reported its response readable") \
    X(TIME,  uint64_t, t_resp_first,    "first exchange: return of its first recv that returned bytes") \
    X(TIME,  uint64_t, t_resp_last,     "first exchange: return of its last recv that returned bytes") \
    X(TIME,  uint64_t, t_shutdown,      "entry of the first shutdown()") \
    X(TIME,  uint64_t, t_close,         "entry of the close() of the last descriptor") \
    X(COUNT, uint64_t, bytes_sent,      "bytes the application sent") \
    X(COUNT, uint64_t, bytes_received,  "bytes the application received") \
    X(COUNT, uint64_t, send_calls,      "send-family calls that moved bytes") \
    X(COUNT, uint64_t, recv_calls,      "recv-family calls that returned bytes") \
    X(ADDR,  struct obs_addr, local,    "local address and port") \
    X(ADDR,  struct obs_addr, peer,     "peer address and port") \
    X(INT,   int32_t,  fd,              "descriptor at connect/accept") \
    X(INT,   int32_t,  connect_errno,   "errno of a failed connect; -1 failed without a known errno; 0 otherwise") \
    X(COUNT, uint32_t, exchanges,       "request/response exchanges") \
    X(ENUM,  uint32_t, side,            "0 client (connect), 1 server (accept)") \
    X(TIME,  uint64_t, t_resp_end,      "return of the last recv that returned bytes, of any exchange (version 2)")

/* The connection fields of a version 1 log: the same list without
 * t_resp_end, and its t_resp_last was the last recv of any exchange. */
#define OBS_CONN_FIELDS_V1_SIZE offsetof(struct obs_conn_fields, t_resp_end)

#define OBS_XCHG_FIELDS(X) \
    X(REF,   uint64_t, conn,            "offset of the connection record") \
    X(TIME,  uint64_t, t_req_first,     "entry of the first send of the request") \
    X(TIME,  uint64_t, t_req_last,      "return of the last send of the request") \
    X(TIME,  uint64_t, t_resp_ready,    "return of the event wait that reported the response readable") \
    X(TIME,  uint64_t, t_resp_first,    "return of the first recv of the response") \
    X(TIME,  uint64_t, t_resp_last,     "return of the last recv of the response") \
    X(COUNT, uint64_t, bytes_sent,      "request bytes") \
    X(COUNT, uint64_t, bytes_received,  "response bytes") \
    X(COUNT, uint32_t, seq,             "1 for the first exchange of the connection") \
    X(PAD,   uint32_t, pad0,            "unused")

#define OBS_UDP_FIELDS(X) \
    X(TIME,  uint64_t, t_first,         "first datagram sent or received") \
    X(TIME,  uint64_t, t_close,         "entry of the close() of the last descriptor") \
    X(COUNT, uint64_t, dgrams_sent,     "datagrams sent") \
    X(COUNT, uint64_t, dgrams_received, "datagrams received") \
    X(COUNT, uint64_t, bytes_sent,      "bytes sent") \
    X(COUNT, uint64_t, bytes_received,  "bytes received") \
    X(COUNT, uint64_t, answered,        "datagrams sent that got an answer from their peer") \
    X(COUNT, uint64_t, unanswered,      "datagrams sent that got no answer before the next send to that peer or close") \
    X(COUNT, uint64_t, unmatched,       "datagrams received that answered no pending send") \
    X(ADDR,  struct obs_addr, local,    "local address and port") \
    X(ADDR,  struct obs_addr, peer,     "connected peer, if connect() was used") \
    X(INT,   int32_t,  fd,              "descriptor") \
    X(PAD,   uint32_t, pad0,            "unused")

#define OBS_DGRAM_FIELDS(X) \
    X(REF,   uint64_t, sock,            "offset of the datagram socket record") \
    X(TIME,  uint64_t, t_send,          "entry of the send of the datagram") \
    X(TIME,  uint64_t, t_recv,          "return of the recv of the answer (absent: unanswered)") \
    X(COUNT, uint64_t, bytes_sent,      "bytes sent") \
    X(COUNT, uint64_t, bytes_received,  "bytes of the answer") \
    X(ADDR,  struct obs_addr, peer,     "peer the datagram went to") \
    X(PAD,   uint32_t, pad0,            "unused")

#define OBS_WAIT_FIELDS(X) \
    X(TIME,  uint64_t, t_enter,         "the wait was entered") \
    X(TIME,  uint64_t, t_exit,          "the wait returned") \
    X(MECH,  uint32_t, mech,            "the mechanism (OBS_MECH_*)") \
    X(COUNT, uint32_t, interest,        "descriptors in the interest set") \
    X(INT,   int32_t,  ready,           "return value (ready descriptors, or -1)") \
    X(INT,   int32_t,  err,             "errno when the wait failed")

/* ---- periods ---------------------------------------------------------------
 * X(name, from, to, doc): a period is to − from, absent unless both times
 * happened.  The connection's T2–T5 are those of its first exchange, so a
 * keep-alive connection's T5 is no longer "first byte to the end of the last
 * response"; busy runs over every exchange, T6 from the last response byte.
 * Per-request figures come from the exchanges (OBS_XCHG_PERIODS). */
#define OBS_CONN_PERIODS(X) \
    X(t1_ms,       t_connect,       t_established, "T1 connection setup") \
    X(t2_ms,       t_established,   t_req_first,   "T2 request preparation (first exchange)") \
    X(t3_ms,       t_req_first,     t_req_last,    "T3 request transmission (first exchange)") \
    X(t4_ms,       t_req_last,      t_resp_first,  "T4 response wait: server time + network (first exchange)") \
    X(t5_ms,       t_resp_first,    t_resp_last,   "T5 response transfer (first exchange)") \
    X(t6_ms,       t_resp_end,      t_close,       "T6 close delay, from the last response byte of any exchange") \
    X(t7_ms,       t_connect,       t_close,       "T7 transaction time") \
    X(busy_ms,     t_req_first,     t_resp_end,    "first request byte to last response byte, every exchange") \
    X(dispatch_ms, t_resp_ready,    t_resp_first,  "the client's event-dispatch delay (first exchange)") \
    X(resolve_ms,  t_resolve_start, t_resolve_end, "the name lookup that gave the peer address")

#define OBS_XCHG_PERIODS(X) \
    X(t3_ms,       t_req_first,  t_req_last,   "T3 request transmission") \
    X(t4_ms,       t_req_last,   t_resp_first, "T4 response wait: server time + network") \
    X(t5_ms,       t_resp_first, t_resp_last,  "T5 response transfer") \
    X(dispatch_ms, t_resp_ready, t_resp_first, "response readable (event wait) to its first recv")

/* Generate the field structs. */
#define OBS_X_STRUCT(kind, ctype, name, doc) ctype name;
struct obs_conn_fields  { OBS_CONN_FIELDS(OBS_X_STRUCT) };
struct obs_xchg_fields  { OBS_XCHG_FIELDS(OBS_X_STRUCT) };
struct obs_udp_fields   { OBS_UDP_FIELDS(OBS_X_STRUCT) };
struct obs_dgram_fields { OBS_DGRAM_FIELDS(OBS_X_STRUCT) };
struct obs_wait_fields  { OBS_WAIT_FIELDS(OBS_X_STRUCT) };

/* Event dispatch mechanisms, in the order of the header's wait table. */
#define OBS_MECHS(X) \
    X(SELECT, "select") X(PSELECT, "pselect") X(POLL, "poll") X(PPOLL, "ppoll") \
    X(EPOLL_WAIT, "epoll_wait") X(EPOLL_PWAIT, "epoll_pwait") X(EPOLL_PWAIT2, "epoll_pwait2")
#define OBS_X_MECH_ENUM(id, name) OBS_MECH_##id,
enum obs_mech { OBS_MECHS(OBS_X_MECH_ENUM) OBS_MECH_COUNT };

/* Per-mechanism aggregate kept in the header (always on). */
struct obs_wait_agg {
    uint64_t calls;
    uint64_t interest_sum;   /* sum of interest-set sizes */
    uint64_t ready_sum;      /* sum of ready counts */
    uint64_t blocked_ns;     /* sum of time inside the wait */
    uint64_t blocked_max_ns;
    uint64_t errors;         /* calls that returned -1 (EINTR included) */
};

/* The library's own counters, updated in place in the header. */
#define OBS_COUNTERS(X) \
    X(dropped, "records dropped: log full, disk full or log unavailable") \
    X(fd_over_cap, "sockets not tracked because their fd exceeded the table") \
    X(lib_ns_sampled, "nanoseconds of the library's own work, summed over sampled calls") \
    X(lib_samples, "calls whose own work was sampled") \
    X(tracked_calls, "tracked calls, counted on sampled calls (times the sampling period)") \
    X(resolves, "getaddrinfo() calls seen") \
    X(tsc_clock_since_ns, "monotonic time from which timestamps were extrapolated from the TSC (0: never)")
#define OBS_X_COUNTER(name, doc) uint64_t name;
struct obs_counters { OBS_COUNTERS(OBS_X_COUNTER) };

/* ---- file header --------------------------------------------------------- */
struct obs_file_header {
    uint32_t magic;          /* OBS_MAGIC */
    uint32_t byte_order;     /* OBS_BYTE_ORDER as written by the writer */
    uint32_t version;        /* OBS_VERSION */
    uint32_t header_size;    /* OBS_HEADER_SIZE */
    uint32_t unit;           /* OBS_UNIT */
    uint32_t header_crc;     /* obs_checksum() of the identity block below */
    uint64_t reserved;       /* bytes of records reserved after the header (atomic) */
    uint64_t capacity;       /* the most record bytes this log may hold */
    /* identity block: written once at creation, covered by header_crc */
    uint8_t  run_id[16];     /* random, unique per log */
    int64_t  anchor_realtime_ns;  /* CLOCK_REALTIME ... */
    int64_t  anchor_monotonic_ns; /* ... and CLOCK_MONOTONIC read together */
    int32_t  pid;
    int32_t  ppid;
    uint32_t uid;
    uint32_t wait_mode;      /* 0 aggregate only, 1 every call as a record */
    char     boot_id[40];
    char     hostname[64];
    char     exe[256];
    char     args[1024];     /* NUL-separated argv, truncated */
    uint32_t args_len;
    uint32_t pad0;
    char     tags[512];      /* OBSERVE_TAGS as given, validated "k=v,k=v" */
    /* live block: updated in place while the process runs */
    struct obs_counters counters;
    struct obs_wait_agg waits[OBS_MECH_COUNT];
};

#define OBS_IDENTITY_BEGIN offsetof(struct obs_file_header, run_id)
#define OBS_IDENTITY_END   offsetof(struct obs_file_header, counters)

/* ---- tags ------------------------------------------------------------------
 * The header's tags (OBSERVE_TAGS) are "key=value,key=value": keys of
 * [A-Za-z0-9_.:-], values any bytes but ',' and NUL.  One rule for the
 * library that writes them and the tools that filter and group by them. */
static inline size_t obs_tag_key_len(const char *s)
{
    size_t n = 0;
    for (;; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == ':' || c == '-'))
            return n;
    }
}

/* Is s a valid tag list ("" included)? */
static inline int obs_tags_valid(const char *s)
{
    if (*s == '\0')
        return 1;
    for (;;) {
        size_t k = obs_tag_key_len(s);
        if (k == 0 || s[k] != '=')
            return 0;
        s += k + 1;
        while (*s && *s != ',')
            s++;
        if (*s == '\0')
            return 1;
        s++;
    }
}

/* The checksum of records and of the header's identity (version 3 on): the
 * words are folded in one by one, then the state is mixed in full (the
 * finaliser of MurmurHash3), so that every bit of the input reaches every
 * bit of the result: a damaged block passes with odds of one in 2^32.
 * Versions 1 and 2 ended with a weaker fold under which the top three bits
 * of the last word went unseen; the reader checks those logs with that fold
 * (obs_checksum_of_version). */
static inline uint64_t obs_checksum_fold(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        __builtin_memcpy(&w, b + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    for (; i < len; i++)
        h = (h ^ b[i]) * 0xC4CEB9FE1A85EC53ull;
    return h;
}

static inline uint32_t obs_checksum(const void *p, size_t len)
{
    uint64_t h = obs_checksum_fold(p, len);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return (uint32_t)h;
}

static inline uint32_t obs_checksum_of_version(uint32_t version, const void *p, size_t len)
{
    if (version >= 3)
        return obs_checksum(p, len);
    uint64_t h = obs_checksum_fold(p, len);
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32));
}

#endif
