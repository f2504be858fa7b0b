/* clockcheck — brackets connects with its own CLOCK_MONOTONIC readings so a
 * test can check that libobserve's timestamps are CLOCK_MONOTONIC, also when
 * they are extrapolated from the TSC.  It first lives past the library's
 * 50 ms calibration baseline, then connects N times, sleeping now and then
 * across the library's 50 ms re-anchoring windows.  Prints per connect:
 *   before=NS after=NS
 *   clockcheck PORT N
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: clockcheck PORT N\n");
        return 2;
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int n = atoi(argv[2]);
    int warm = socket(AF_INET, SOCK_STREAM, 0); /* the library starts its clock here */
    close(warm);
    usleep(120000);
    for (int i = 0; i < n; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        long long before = now();
        int r = connect(s, (struct sockaddr *)&a, sizeof a);
        long long after = now();
        close(s);
        if (r != 0) {
            perror("clockcheck: connect");
            return 1;
        }
        printf("before=%lld after=%lld\n", before, after);
        if (i % 10 == 9)
            usleep(30000 + (i % 7) * 5000);
    }
    return 0;
}
