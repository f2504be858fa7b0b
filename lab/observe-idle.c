/* observe-idle — holds N idle TCP connections to a server, silent, until
 * told to stop: the thesis's idle connections, which make every select or
 * poll call on the server scan N more descriptors while epoll does not
 * (its Figure 5.2).  Raises RLIMIT_NOFILE as needed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lab.h"

static const char *prog = "observe-idle";
static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s --addr ADDR --port PORT --conns N\n"
            "\n"
            "Opens N TCP connections to ADDR:PORT (IPv4), sends nothing, and keeps them\n"
            "open until SIGINT or SIGTERM.  Prints '%s: holding K connections' once\n"
            "they are up; if K < N (connecting failed: the reason is on stderr) it\n"
            "closes them and exits 1 at once.\n",
            prog, prog);
}

int main(int argc, char **argv)
{
    const char *addr_text = NULL;
    long port = -1, conns = -1;
    static const struct option opts[] = {
        { "addr", required_argument, NULL, 'a' }, { "port", required_argument, NULL, 'p' },
        { "conns", required_argument, NULL, 'c' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "a:p:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': addr_text = optarg; break;
        case 'p':
            if ((port = lab_number(prog, "port", optarg, 1, 65535)) < 0)
                return 2;
            break;
        case 'c':
            if ((conns = lab_number(prog, "number of connections", optarg, 0, 1000000)) < 0)
                return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (!addr_text || port < 0 || conns < 0 || optind != argc || inet_pton(AF_INET, addr_text, &to.sin_addr) != 1) {
        fprintf(stderr, "%s: need --addr (IPv4), --port and --conns\n", prog);
        usage(stderr);
        return 2;
    }
    struct sigaction sa = { .sa_handler = on_stop };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    long limit = lab_raise_nofile(conns + 64);
    int *fds = calloc((size_t)conns + 1, sizeof *fds);
    long held = 0;
    for (; fds && held < conns && !stop; held++) {
        if (held + 16 >= limit) {
            fprintf(stderr, "%s: RLIMIT_NOFILE is %ld\n", prog, limit);
            break;
        }
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
            fprintf(stderr, "%s: connection %ld: %s\n", prog, held + 1, strerror(errno));
            if (fd >= 0)
                close(fd);
            break;
        }
        fds[held] = fd;
    }
    printf("%s: holding %ld connections\n", prog, held);
    fflush(stdout);
    /* fewer than asked is a failed set-up: say so and stop, rather than
     * leave an experiment waiting on a holder that does not hold */
    while (!stop && held == conns)
        pause();
    for (long i = 0; i < held; i++)
        close(fds[i]);
    return held == conns ? 0 : 1;
}
