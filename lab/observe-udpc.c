/* observe-udpc — the lab's rate-controlled UDP client, the thesis's: it
 * sends a datagram every 1/RATE seconds, each to a random one of the
 * server's N ports, for DURATION seconds, and times each answer itself.  Its
 * own figures are an oracle for libobserve's datagram records.
 *   sent=S answered=A lost=L response_ms min=… median=… p90=… p99=… max=… mean=…
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lab.h"

static const char *prog = "observe-udpc";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s --addr ADDR --port FIRST [--ports N] [--rate PPS] [--duration S]\n"
            "       [--size BYTES] [--timeout-ms MS]\n"
            "\n"
            "Sends RATE datagrams a second (default 10) for DURATION seconds (default 5),\n"
            "each to a random one of ports FIRST..FIRST+N-1 (default N 1), and times each\n"
            "answer.  Waits TIMEOUT ms (default 1000) after the last for late answers.\n"
            "Prints: sent= answered= lost= and the response times in ms.\n",
            prog);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, long n, double p)
{
    double pos = p * (double)(n - 1);
    long lo = (long)pos;
    return lo + 1 >= n ? v[n - 1] : v[lo] + (v[lo + 1] - v[lo]) * (pos - (double)lo);
}

int main(int argc, char **argv)
{
    const char *addr_text = NULL;
    long first = -1, nports = 1, rate = 10, duration = 5, size = 64, timeout_ms = 1000;
    static const struct option opts[] = {
        { "addr", required_argument, NULL, 'a' },     { "port", required_argument, NULL, 'p' },
        { "ports", required_argument, NULL, 'n' },    { "rate", required_argument, NULL, 'r' },
        { "duration", required_argument, NULL, 'd' }, { "size", required_argument, NULL, 's' },
        { "timeout-ms", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "a:p:n:r:d:s:t:h", opts, NULL)) != -1) {
        long *target = c == 'p' ? &first : c == 'n' ? &nports : c == 'r' ? &rate : c == 'd' ? &duration
                     : c == 's' ? &size : c == 't' ? &timeout_ms : NULL;
        static const struct { char opt; const char *what; long min, max; } limits[] = {
            { 'p', "port", 1, 65535 }, { 'n', "number of ports", 1, 5000 }, { 'r', "rate", 1, 100000 },
            { 'd', "duration", 1, 3600 }, { 's', "size", 16, 65000 }, { 't', "timeout", 1, 60000 },
        };
        if (c == 'a') {
            addr_text = optarg;
        } else if (c == 'h') {
            usage(stdout);
            return 0;
        } else if (target) {
            for (size_t i = 0; i < sizeof limits / sizeof *limits; i++)
                if (limits[i].opt == c && (*target = lab_number(prog, limits[i].what, optarg, limits[i].min,
                                                                 limits[i].max)) < 0)
                    return 2;
        } else {
            usage(stderr);
            return 2;
        }
    }
    struct sockaddr_in to = { .sin_family = AF_INET };
    if (!addr_text || first < 0 || inet_pton(AF_INET, addr_text, &to.sin_addr) != 1 || optind != argc ||
        first + nports - 1 > 65535) {
        fprintf(stderr, "%s: need --addr (IPv4) and --port, ports within 65535\n", prog);
        usage(stderr);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        fprintf(stderr, "%s: socket: %s\n", prog, strerror(errno));
        return 1;
    }
    long total = rate * duration;
    int64_t *sent_at = calloc((size_t)total, sizeof *sent_at);
    double *rtt = calloc((size_t)total, sizeof *rtt);
    unsigned char *buf = calloc(1, 65536);
    if (!sent_at || !rtt || !buf)
        return 1;
    srand((unsigned)(now_ns() ^ getpid()));
    int64_t start = now_ns(), interval = 1000000000LL / rate, end_wait = 0;
    long sent = 0, answered = 0;
    for (;;) {
        int64_t t = now_ns();
        if (sent < total && t >= start + sent * interval) {
            uint32_t seq = (uint32_t)sent;
            memset(buf, 'u', (size_t)size);
            memcpy(buf, &seq, sizeof seq);
            to.sin_port = htons((uint16_t)(first + rand() % nports));
            sent_at[sent] = now_ns();
            if (sendto(fd, buf, (size_t)size, 0, (struct sockaddr *)&to, sizeof to) < 0)
                fprintf(stderr, "%s: sendto: %s\n", prog, strerror(errno));
            if (++sent == total)
                end_wait = now_ns() + timeout_ms * 1000000LL;
            continue;
        }
        if (sent == total && (answered == total || t >= end_wait))
            break;
        int64_t until = sent < total ? start + sent * interval : end_wait;
        int wait_ms = (int)((until - t + 999999) / 1000000);
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, wait_ms > 0 ? wait_ms : 0) <= 0)
            continue;
        ssize_t n = recv(fd, buf, 65536, 0);
        int64_t got = now_ns();
        uint32_t seq;
        if (n < (ssize_t)sizeof seq)
            continue;
        memcpy(&seq, buf, sizeof seq);
        if (seq < (uint32_t)sent && rtt[seq] == 0) {
            rtt[seq] = (double)(got - sent_at[seq]) / 1e6;
            answered++;
        }
    }
    long n = 0;
    for (long i = 0; i < sent; i++)
        if (rtt[i] > 0)
            rtt[n++] = rtt[i];
    qsort(rtt, (size_t)n, sizeof *rtt, cmp);
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += rtt[i];
    printf("sent=%ld answered=%ld lost=%ld", sent, answered, sent - answered);
    if (n)
        printf(" response_ms min=%.6f median=%.6f p90=%.6f p99=%.6f max=%.6f mean=%.6f", rtt[0], pct(rtt, n, 0.5),
               pct(rtt, n, 0.9), pct(rtt, n, 0.99), rtt[n - 1], sum / (double)n);
    printf("\n");
    return 0;
}
