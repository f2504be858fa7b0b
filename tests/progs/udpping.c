/* udpping — the tests' datagram pair.
 *   udpping server [--drop-every N]   echo server on 127.0.0.1, port printed;
 *                                     with --drop-every N it ignores every
 *                                     Nth datagram (so some go unanswered)
 *   udpping client --port P --count N [--connected] [--timeout-ms T]
 *                                     sends N datagrams one at a time, waits
 *                                     for each answer, prints its own figures:
 *                                     sent=N answered=A rtt_ns_sum=S
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int server(int drop_every)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len)) {
        perror("udpping server");
        return 1;
    }
    printf("port=%d\n", ntohs(a.sin_port));
    fflush(stdout);
    char buf[65536];
    for (long n = 1;; n++) {
        struct sockaddr_in from;
        socklen_t flen = sizeof from;
        ssize_t r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
        if (r < 0)
            continue;
        if (drop_every > 0 && n % drop_every == 0)
            continue;
        sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, flen);
    }
}

static int client(int port, int count, int connected, int timeout_ms, int size)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connected && connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        perror("connect");
        return 1;
    }
    char buf[65536];
    memset(buf, 'u', sizeof buf);
    long answered = 0;
    long long rtt_sum = 0;
    for (int i = 0; i < count; i++) {
        long long t0 = now_ns();
        ssize_t s = connected ? send(fd, buf, (size_t)size, 0)
                              : sendto(fd, buf, (size_t)size, 0, (struct sockaddr *)&to, sizeof to);
        if (s < 0) {
            perror("send");
            return 1;
        }
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, timeout_ms) == 1) {
            struct sockaddr_in from;
            socklen_t flen = sizeof from;
            ssize_t r = connected ? recv(fd, buf, sizeof buf, 0)
                                  : recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
            if (r >= 0) {
                rtt_sum += now_ns() - t0;
                answered++;
            }
        }
    }
    close(fd);
    printf("sent=%d answered=%ld rtt_ns_sum=%lld\n", count, answered, rtt_sum);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "server") == 0)
        return server(argc >= 4 && strcmp(argv[2], "--drop-every") == 0 ? atoi(argv[3]) : 0);
    int port = 0, count = 10, connected = 0, timeout_ms = 200, size = 32;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--count") && i + 1 < argc) count = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc) timeout_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--connected")) connected = 1;
        else {
            fprintf(stderr, "usage: udpping server [--drop-every N] | client --port P [--count N] [--connected]\n");
            return 2;
        }
    }
    if (argc < 2 || strcmp(argv[1], "client") != 0 || port <= 0 || size < 1 || size > 65000) {
        fprintf(stderr, "usage: udpping server [--drop-every N] | client --port P [--count N] [--connected]\n");
        return 2;
    }
    return client(port, count, connected, timeout_ms, size);
}
