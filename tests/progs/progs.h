/* progs.h — what several of the tests' client programs need alike: a TCP
 * connection to a port on loopback, and a connected pair of TCP sockets on
 * loopback, made through libc (so libobserve sees them), or the program
 * exits with status 2 saying why. */
#ifndef OBS_TEST_PROGS_H
#define OBS_TEST_PROGS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static inline int dial_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect to loopback");
        exit(2);
    }
    return fd;
}

/* sv[0] connected to sv[1], accepted from a listener that is then closed. */
static inline void loopback_pair(int sv[2])
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) ||
        getsockname(l, (struct sockaddr *)&a, &len)) {
        perror("listen on loopback");
        exit(2);
    }
    sv[0] = dial_loopback(ntohs(a.sin_port));
    while ((sv[1] = accept(l, NULL, NULL)) < 0 && errno == EINTR)
        ;
    close(l);
}

#endif
