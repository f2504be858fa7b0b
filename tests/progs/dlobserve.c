/* dlobserve — loads libobserve.so with dlopen and makes one connection
 * through the library's own socket/connect/send/recv/close, for the test of
 * secure-execution mode: ld.so refuses LD_PRELOAD paths in a setuid
 * process, so this is how the library could still end up in one, and there
 * it must ignore its environment (OBSERVE_DIR and the rest) and record
 * nothing.
 *   dlobserve LIBRARY PORT
 * Prints: at_secure=0|1 received=N
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: dlobserve LIBRARY PORT\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    int (*sock)(int, int, int) = (int (*)(int, int, int))dlsym(lib, "socket");
    int (*conn)(int, const struct sockaddr *, socklen_t) =
        (int (*)(int, const struct sockaddr *, socklen_t))dlsym(lib, "connect");
    ssize_t (*snd)(int, const void *, size_t, int) = (ssize_t(*)(int, const void *, size_t, int))dlsym(lib, "send");
    ssize_t (*rcv)(int, void *, size_t, int) = (ssize_t(*)(int, void *, size_t, int))dlsym(lib, "recv");
    int (*cls)(int) = (int (*)(int))dlsym(lib, "close");
    if (!sock || !conn || !snd || !rcv || !cls) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 2;
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = sock(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || conn(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        return 1;
    }
    static const char req[] = "GET / HTTP/1.0\r\n\r\n";
    snd(fd, req, sizeof req - 1, 0);
    char buf[65536];
    long got = 0;
    ssize_t n;
    while ((n = rcv(fd, buf, sizeof buf, 0)) > 0)
        got += n;
    cls(fd);
    printf("at_secure=%lu received=%ld\n", getauxval(AT_SECURE), got);
    return 0;
}
