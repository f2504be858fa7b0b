/* pingpong — the cost of a tracked call.  One thread holds both ends of a
 * loopback TCP connection and bounces one byte: send A->B, recv on B, send
 * B->A, recv on A; four tracked calls per round, each starting or ending an
 * exchange (the hardest case for libobserve: a new exchange record every
 * round on both sides).  With "oneway" the byte only goes A->B (send on A,
 * recv on B, twice a round): the same calls with no exchange to record,
 * which separates the cost of tracking a call from that of its records.
 * Prints "rounds=N ns_per_call=X".
 *   pingpong [ROUNDS [oneway]]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 200000;
    int oneway = argc > 2 && strcmp(argv[2], "oneway") == 0;
    if (rounds <= 0 || (argc > 2 && !oneway) || argc > 3) {
        fprintf(stderr, "usage: pingpong [ROUNDS [oneway]]\n");
        return 2;
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &len)) {
        perror("pingpong");
        return 1;
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) {
        perror("pingpong: connect");
        return 1;
    }
    int s = accept(l, NULL, NULL);
    int sender2 = oneway ? c : s, receiver2 = oneway ? s : c; /* the second half of a round */
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b = 'x';
    for (long i = 0; i < 1000; i++) { /* warm up */
        send(c, &b, 1, 0); recv(s, &b, 1, 0); send(s, &b, 1, 0); recv(c, &b, 1, 0);
    }
    double t0 = now();
    for (long i = 0; i < rounds; i++) {
        if (send(c, &b, 1, 0) != 1 || recv(s, &b, 1, 0) != 1 || send(sender2, &b, 1, 0) != 1 ||
            recv(receiver2, &b, 1, 0) != 1) {
            perror("pingpong: round");
            return 1;
        }
    }
    double t1 = now();
    printf("rounds=%ld ns_per_call=%.1f\n", rounds, (t1 - t0) / rounds / 4);
    close(c);
    close(s);
    close(l);
    return 0;
}
