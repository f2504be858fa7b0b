/* progs.h — what several of the tests' client programs need alike: a TCP
 * connection to a port on loopback, made through libc (so libobserve sees
 * it), or the program exits with status 2 saying why. */
#ifndef OBS_TEST_PROGS_H
#define OBS_TEST_PROGS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

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

#endif
