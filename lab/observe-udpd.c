/* observe-udpd — the lab's UDP server: N sockets on consecutive ports (1 to
 * 5000), all on one libevent event base whose dispatch mechanism (select,
 * poll or epoll) is chosen per run, each answering every datagram to its
 * sender.  This is the thesis's multi-port UDP server: with select and poll
 * the cost of each wait grows with the number of ports, with epoll it does
 * not (its Figures 5.3 and 5.4).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lab.h"

static const char *prog = "observe-udpd";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [--backend select|poll|epoll] [--addr ADDR] [--port PORT] [--ports N]\n"
            "\n"
            "Answers every datagram to its sender, on N consecutive ports from PORT.\n"
            "  --backend M   select, poll or epoll (default epoll)\n"
            "  --addr ADDR   IPv4 address to listen on (default 127.0.0.1)\n"
            "  --port PORT   the first port (default 9000; 0: a free range is found)\n"
            "  --ports N     how many ports, 1 to 5000 (default 1)\n"
            "Prints '%s: listening on ADDR ports FIRST-LAST (N) backend=M' once ready.\n"
            "Stops on SIGINT or SIGTERM.\n",
            prog, prog);
}

static void on_datagram(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    char buf[65536];
    struct sockaddr_storage from;
    /* drain what is queued, so each wakeup is worth its cost */
    for (int i = 0; i < 64; i++) {
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &len);
        if (n < 0)
            return;
        sendto(fd, buf, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&from, len);
    }
}

/* Binds n sockets on first..first+n-1; 0, or -1 (all closed again). */
static int bind_range(struct in_addr addr, int first, int n, int *fds)
{
    for (int i = 0; i < n; i++) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)(first + i)), .sin_addr = addr };
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0) {
            int e = errno;
            for (int j = 0; j <= i; j++)
                if (fds[j] >= 0)
                    close(fds[j]);
            errno = e;
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *backend = "epoll", *addr_text = "127.0.0.1";
    long port = 9000, nports = 1;
    static const struct option opts[] = {
        { "backend", required_argument, NULL, 'b' }, { "addr", required_argument, NULL, 'a' },
        { "port", required_argument, NULL, 'p' },    { "ports", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "b:a:p:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': backend = optarg; break;
        case 'a': addr_text = optarg; break;
        case 'p':
            if ((port = lab_number(prog, "port", optarg, 0, 65535)) < 0)
                return 2;
            break;
        case 'n':
            if ((nports = lab_number(prog, "number of ports", optarg, 1, 5000)) < 0)
                return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    struct in_addr addr;
    if (optind != argc || inet_pton(AF_INET, addr_text, &addr) != 1) {
        fprintf(stderr, "%s: %s '%s'\n", prog, optind != argc ? "unexpected argument" : "bad address",
                optind != argc ? argv[optind] : addr_text);
        return 2;
    }
    if (port && port + nports - 1 > 65535) {
        fprintf(stderr, "%s: ports %ld-%ld do not fit below 65536\n", prog, port, port + nports - 1);
        return 2;
    }
    if (lab_raise_nofile(nports + 64) < nports + 16) {
        fprintf(stderr, "%s: cannot have %ld descriptors open (RLIMIT_NOFILE)\n", prog, nports + 16);
        return 1;
    }
    struct event_base *base = lab_base(prog, backend);
    if (!base)
        return strcmp(backend, "select") && strcmp(backend, "poll") && strcmp(backend, "epoll") ? 2 : 1;
    int *fds = calloc((size_t)nports, sizeof *fds);
    int first = (int)port, bound = -1;
    srand((unsigned)(time(NULL) ^ getpid()));
    for (int attempt = 0; fds && attempt < (port ? 1 : 100) && bound != 0; attempt++) {
        if (!port)
            first = 20000 + rand() % (60000 - 20000 - (int)nports);
        bound = bind_range(addr, first, (int)nports, fds);
    }
    if (bound != 0) {
        fprintf(stderr, "%s: cannot bind %ld ports from %d on %s: %s\n", prog, nports, first, addr_text,
                strerror(errno));
        return 1;
    }
    for (long i = 0; i < nports; i++)
        event_add(event_new(base, fds[i], EV_READ | EV_PERSIST, on_datagram, NULL), NULL);
    lab_stop_on_signals(base);
    printf("%s: listening on %s ports %d-%ld (%ld) backend=%s\n", prog, addr_text, first, first + nports - 1, nports,
           event_base_get_method(base));
    fflush(stdout);
    event_base_dispatch(base);
    return 0;
}
