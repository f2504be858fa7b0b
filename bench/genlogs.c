/* genlogs — writes synthetic but realistic libobserve logs for the slicer
 * benchmark: HTTP-like client processes (a connection, then 1 to 4
 * request/response exchanges with plausible phase times) and a UDP client
 * (datagrams, a few unanswered), in the exact on-disk format of
 * common/obs_format.h, final records with their checksums.
 *   genlogs DIR RECORDS [PROCESSES]
 * Prints the number of records written.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/obs_format.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A duration around `typical` ns, with a long tail like real latencies. */
static uint64_t dur(uint64_t typical)
{
    uint64_t r = next_rand() % 1000;
    uint64_t d = typical / 2 + next_rand() % typical;
    return r > 990 ? d * 20 : r > 900 ? d * 3 : d;
}

struct out {
    FILE *f;
    uint64_t reserved, records;
};

static uint64_t put(struct out *o, enum obs_rec_type type, const void *fields, size_t len, uint32_t flags)
{
    unsigned char slot[OBS_UNIT * 8] = { 0 };
    struct obs_rec_hdr *h = (struct obs_rec_hdr *)slot;
    h->tag = OBS_TAG(type);
    h->units = obs_rec_units[type];
    h->state = OBS_STATE_FINAL;
    h->flags = flags;
    memcpy(h + 1, fields, len);
    h->crc = obs_checksum(h + 1, len);
    uint64_t offset = OBS_HEADER_SIZE + o->reserved;
    fwrite(slot, 1, (size_t)h->units * OBS_UNIT, o->f);
    o->reserved += (uint64_t)h->units * OBS_UNIT;
    o->records++;
    return offset;
}

static struct obs_addr addr4(const char *ip, uint16_t port)
{
    struct obs_addr a = { .family = AF_INET, .port = port };
    inet_pton(AF_INET, ip, a.addr);
    return a;
}

static void header(struct obs_file_header *h, int pid, const char *exe, const char *tags)
{
    memset(h, 0, sizeof *h);
    h->magic = OBS_MAGIC;
    h->byte_order = OBS_BYTE_ORDER;
    h->version = OBS_VERSION;
    h->header_size = OBS_HEADER_SIZE;
    h->unit = OBS_UNIT;
    for (int i = 0; i < 16; i++)
        h->run_id[i] = (uint8_t)next_rand();
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    h->anchor_realtime_ns = rt.tv_sec * 1000000000LL + rt.tv_nsec;
    h->anchor_monotonic_ns = mono.tv_sec * 1000000000LL + mono.tv_nsec;
    h->pid = pid;
    h->ppid = 1;
    snprintf(h->boot_id, sizeof h->boot_id, "00000000-0000-0000-0000-000000000000");
    snprintf(h->hostname, sizeof h->hostname, "bench-client");
    snprintf(h->exe, sizeof h->exe, "%s", exe);
    h->args_len = (uint32_t)strlen(exe) + 1;
    memcpy(h->args, exe, h->args_len);
    snprintf(h->tags, sizeof h->tags, "%s", tags);
    h->capacity = 1ull << 40;
}

static void http_process(struct out *o, struct obs_file_header *h, uint64_t budget)
{
    uint64_t t = (uint64_t)h->anchor_monotonic_ns;
    uint16_t lport = 20000;
    while (o->records < budget) {
        struct obs_conn_fields c = { 0 };
        c.local = addr4("198.18.0.1", lport++);
        c.peer = addr4(next_rand() % 3 == 0 ? "198.18.1.1" : next_rand() % 2 ? "198.18.2.1" : "198.18.3.1", 80);
        c.fd = 3 + (int)(next_rand() % 100);
        c.t_connect = t;
        c.t_established = t + dur(60000);
        uint64_t now = c.t_established;
        unsigned n = 1 + (unsigned)(next_rand() % 4);
        uint64_t conn_at = OBS_HEADER_SIZE + o->reserved;
        /* the connection's slot comes first in a real log, then its exchanges */
        struct obs_xchg_fields xs[4];
        for (unsigned i = 0; i < n; i++) {
            struct obs_xchg_fields *x = &xs[i];
            memset(x, 0, sizeof *x);
            x->conn = conn_at;
            x->seq = i + 1;
            x->t_req_first = now + dur(3000);
            x->t_req_last = x->t_req_first + dur(8000);
            x->t_resp_ready = x->t_req_last + dur(400000);
            x->t_resp_first = x->t_resp_ready + dur(5000);
            x->t_resp_last = x->t_resp_first + dur(100000);
            x->bytes_sent = 60 + next_rand() % 40;
            x->bytes_received = 1000 + next_rand() % 50000;
            now = x->t_resp_last;
            c.bytes_sent += x->bytes_sent;
            c.bytes_received += x->bytes_received;
            c.send_calls++;
            c.recv_calls += 1 + x->bytes_received / 16384;
        }
        c.t_req_first = xs[0].t_req_first;
        c.t_req_last = xs[0].t_req_last;
        c.t_resp_ready = xs[0].t_resp_ready;
        c.t_resp_first = xs[0].t_resp_first;
        c.t_resp_last = xs[n - 1].t_resp_last;
        c.t_close = now + dur(2000);
        c.exchanges = n;
        put(o, OBS_REC_CONN, &c, sizeof c, 0);
        for (unsigned i = 0; i < n; i++)
            put(o, OBS_REC_XCHG, &xs[i], sizeof xs[i], 0);
        t = c.t_close + dur(10000);
    }
}

static void udp_process(struct out *o, struct obs_file_header *h, uint64_t budget)
{
    struct obs_udp_fields u = { 0 };
    u.local = addr4("198.18.0.1", 40000);
    u.fd = 3;
    uint64_t sock = put(o, OBS_REC_UDP, &u, sizeof u, 0);
    uint64_t t = (uint64_t)h->anchor_monotonic_ns;
    while (o->records < budget) {
        struct obs_dgram_fields d = { 0 };
        d.sock = sock;
        d.peer = addr4("198.18.1.1", (uint16_t)(9000 + next_rand() % 1000));
        d.t_send = t;
        d.bytes_sent = 64;
        if (next_rand() % 100) {
            d.t_recv = t + dur(150000);
            d.bytes_received = 64;
        }
        put(o, OBS_REC_DGRAM, &d, sizeof d, 0);
        t += 1000000;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: genlogs DIR RECORDS [PROCESSES]\n");
        return 2;
    }
    uint64_t total = strtoull(argv[2], NULL, 10);
    int procs = argc > 3 ? atoi(argv[3]) : 4;
    if (procs < 2)
        procs = 2;
    /* every run gets its own run ids, as real processes do */
    struct timespec seed;
    clock_gettime(CLOCK_REALTIME, &seed);
    rng ^= (uint64_t)seed.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid() << 32 ^ (uint64_t)seed.tv_sec;
    uint64_t written = 0;
    for (int p = 0; p < procs; p++) {
        char path[4096];
        int udp = p == procs - 1; /* one process in this many is a UDP client */
        snprintf(path, sizeof path, "%s/%s.%d.bench.olog", argv[1], udp ? "udpclient" : "httperf", 1000 + p);
        struct out o = { fopen(path, "wb"), 0, 0 };
        if (!o.f) {
            perror(path);
            return 1;
        }
        struct obs_file_header h;
        header(&h, 1000 + p, udp ? "/usr/bin/udpclient" : "/usr/bin/httperf", udp ? "kind=udp" : "kind=http");
        fseek(o.f, OBS_HEADER_SIZE, SEEK_SET);
        /* UDP is a small share of the mix, HTTP-like clients the rest */
        uint64_t udp_budget = total / 20, http_budget = (total - udp_budget) / (uint64_t)(procs - 1);
        if (udp)
            udp_process(&o, &h, udp_budget);
        else
            http_process(&o, &h, http_budget);
        h.reserved = o.reserved;
        h.header_crc = obs_checksum((const char *)&h + OBS_IDENTITY_BEGIN, OBS_IDENTITY_END - OBS_IDENTITY_BEGIN);
        fseek(o.f, 0, SEEK_SET);
        fwrite(&h, 1, sizeof h, o.f);
        written += o.records;
        if (fclose(o.f) != 0) {
            perror(path);
            return 1;
        }
    }
    printf("%llu\n", (unsigned long long)written);
    return 0;
}
