/* libctorconnect — a library whose constructor makes a TCP connection (to
 * 127.0.0.1:$CTOR_PORT, one HTTP request), to be preloaded beside libobserve
 * in either order: the other interposer may run before ours is ready, or
 * call into it from its own initialisation.  Prints "ctor: N bytes" to stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((constructor)) static void ctor_connect(void)
{
    const char *port = getenv("CTOR_PORT");
    if (!port)
        return;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("ctor: connect");
        return;
    }
    static const char req[] = "GET / HTTP/1.0\r\n\r\n";
    long total = 0;
    if (write(fd, req, sizeof req - 1) > 0) {
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            total += n;
    }
    close(fd);
    fprintf(stderr, "ctor: %ld bytes\n", total);
}
