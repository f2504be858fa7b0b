/* behave — prints a transcript of what socket calls return (values and
 * errno), so that a test can run it with and without libobserve and demand
 * the two transcripts be identical.  Scenarios:
 *   behave errors PORT_CLOSED    bad fds, bad pointers, zero lengths, a
 *                                closed socket, a refused connect
 *   behave eintr                 blocking recv/poll/epoll_wait/connect-less
 *                                waits interrupted by a signal without
 *                                SA_RESTART (EINTR once), then with it
 *   behave sigpipe PORT          send to a peer that closed, SIGPIPE default:
 *                                the process dies of SIGPIPE
 *   behave epipe PORT            the same with SIGPIPE ignored: EPIPE
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#define SHOW(expr)                                                                  \
    do {                                                                            \
        errno = 0;                                                                  \
        long r_ = (long)(expr);                                                     \
        printf("%-60s -> %ld errno=%s\n", #expr, r_, r_ < 0 ? strerrorname_np(errno) : "-"); \
    } while (0)

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    return a;
}

/* volatile so the compiler cannot see the bad arguments coming */
static void *volatile null_ptr;
static volatile int minus_one = -1;

static int errors(int closed_port)
{
    char buf[16];
    struct sockaddr_in a = loopback(closed_port);
    SHOW(read(-1, buf, sizeof buf));
    SHOW(write(999, buf, 1));
    SHOW(recv(998, buf, 1, 0));
    SHOW(send(997, buf, 1, 0));
    SHOW(close(996));
    SHOW(connect(995, (struct sockaddr *)&a, sizeof a));
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SHOW(s >= 0);
    SHOW(send(s, buf, 1, MSG_NOSIGNAL));              /* not connected */
    SHOW(recv(s, buf, 0, MSG_DONTWAIT));
    SHOW(connect(s, (struct sockaddr *)&a, 3));        /* bad length */
    SHOW(connect(s, (struct sockaddr *)&a, sizeof a)); /* refused */
    SHOW(connect(s, NULL, sizeof a));
    SHOW(getsockopt(s, SOL_SOCKET, SO_ERROR, NULL, NULL));
    SHOW(close(s));
    SHOW(close(s));                                    /* closed twice */
    SHOW(send(s, buf, 1, MSG_NOSIGNAL));               /* closed socket */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    SHOW(sendto(u, buf, 1, 0, (struct sockaddr *)&a, 2));
    SHOW(recvfrom(u, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL));
    SHOW(sendto(u, (void *)8, 100, 0, (struct sockaddr *)&a, sizeof a)); /* bad pointer */
    struct iovec iov = { buf, 0 };
    SHOW(writev(u, &iov, 1));
    SHOW(readv(u, &iov, minus_one));
    SHOW(poll(null_ptr, 1, 0));
    SHOW(select(-1, NULL, NULL, NULL, NULL));
    SHOW(epoll_wait(u, null_ptr, 1, 0));
    SHOW(epoll_ctl(-1, EPOLL_CTL_ADD, u, NULL));
    SHOW(dup2(u, -5));
    SHOW(shutdown(u, 99));
    SHOW(close(u));
    return 0;
}

static void on_alarm(int sig) { (void)sig; }

static void arm(int restart)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { { 0, 0 }, { 0, 50000 } }; /* one shot after 50 ms */
    setitimer(ITIMER_REAL, &it, NULL);
}

static int eintr(void)
{
    int sv[2];
    char c;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 4);
    getsockname(l, (struct sockaddr *)&a, &len);
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    connect(sv[0], (struct sockaddr *)&a, sizeof a);
    sv[1] = accept(l, NULL, NULL);
    arm(0);
    SHOW(recv(sv[0], &c, 1, 0));
    struct pollfd p = { sv[0], POLLIN, 0 };
    arm(0);
    SHOW(poll(&p, 1, 1000));
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = sv[0] };
    epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev);
    arm(0);
    SHOW(epoll_wait(ep, &ev, 1, 1000));
    fd_set s;
    FD_ZERO(&s);
    FD_SET(sv[0], &s);
    arm(0);
    SHOW(select(sv[0] + 1, &s, NULL, NULL, NULL));
    /* With SA_RESTART, recv is restarted: the byte sent after the signal arrives */
    arm(1);
    if (fork() == 0) {
        usleep(150000);
        send(sv[1], "x", 1, 0);
        _exit(0);
    }
    SHOW(recv(sv[0], &c, 1, 0));
    close(ep);
    close(sv[0]);
    close(sv[1]);
    close(l);
    return 0;
}

static int pipe_test(int port, int ignore)
{
    if (ignore)
        signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(port);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        return 1;
    }
    char buf[4096] = { 0 };
    /* The server closes after its reply; keep sending until the peer's RST
     * turns into EPIPE (or SIGPIPE). */
    SHOW(send(s, "GET / HTTP/1.0\r\n\r\n", 18, 0));
    while (recv(s, buf, sizeof buf, 0) > 0)
        ;
    for (int i = 0; i < 50; i++) {
        errno = 0;
        ssize_t r = send(s, buf, sizeof buf, 0);
        if (r < 0) {
            printf("send failed errno=%s\n", strerrorname_np(errno));
            break;
        }
        usleep(1000);
    }
    fflush(stdout);
    close(s);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && strcmp(argv[1], "errors") == 0)
        return errors(atoi(argv[2]));
    if (argc >= 2 && strcmp(argv[1], "eintr") == 0)
        return eintr();
    if (argc >= 3 && strcmp(argv[1], "sigpipe") == 0)
        return pipe_test(atoi(argv[2]), 0);
    if (argc >= 3 && strcmp(argv[1], "epipe") == 0)
        return pipe_test(atoi(argv[2]), 1);
    fprintf(stderr, "usage: behave errors PORT | eintr | sigpipe PORT | epipe PORT\n");
    return 2;
}
