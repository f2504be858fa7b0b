/* behave — prints a transcript of what socket calls return (values and
 * errno), so that a test can run it with and without libobserve and demand
 * the two transcripts be identical.  Scenarios:
 *   behave errors PORT_CLOSED    every interposed call with bad fds, bad
 *                                pointers, zero lengths, bad flags, a closed
 *                                socket, a refused connect
 *   behave eintr                 blocking recv/poll/epoll_wait/select/connect
 *                                waits interrupted by a signal without
 *                                SA_RESTART (EINTR once), then with it
 *   behave sigpipe PORT          send to a peer that closed, SIGPIPE default:
 *                                the process dies of SIGPIPE
 *   behave epipe PORT            the same with SIGPIPE ignored: EPIPE
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* errno is shown after every call, success included: the library must
 * leave it as the real call did, even where it makes calls of its own
 * (the first socket creates the log). */
#define SHOW(expr)                                                                  \
    do {                                                                            \
        errno = 0;                                                                  \
        long r_ = (long)(expr);                                                     \
        printf("%-60s -> %ld errno=%s\n", #expr, r_, errno ? strerrorname_np(errno) : "-"); \
    } while (0)

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    return a;
}

/* volatile so the compiler cannot see the bad arguments coming */
static void *volatile null_ptr;
static void *volatile bad_ptr = (void *)8;
static void *volatile wild_ptr; /* an unmapped page in the middle of memory: set in errors() */
static volatile int minus_one = -1;
static volatile int too_many = 100000;

/* A connected TCP pair on loopback (client, server side), for the calls
 * that need a live socket to reach their bad argument. */
static void tcp_pair(int sv[2], int *listener)
{
    struct sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    *listener = socket(AF_INET, SOCK_STREAM, 0);
    bind(*listener, (struct sockaddr *)&a, sizeof a);
    listen(*listener, 4);
    getsockname(*listener, (struct sockaddr *)&a, &len);
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    connect(sv[0], (struct sockaddr *)&a, sizeof a);
    sv[1] = accept(*listener, NULL, NULL);
}

/* Sockets, descriptors and their bookkeeping calls. */
static void bad_descriptors(int closed_port)
{
    char buf[16];
    struct sockaddr_in a = loopback(closed_port);
    socklen_t alen = sizeof a;
    int fds[2];
    SHOW(socket(AF_INET + 1000, SOCK_STREAM, 0));
    SHOW(socket(AF_INET, 99, 0));
    SHOW(socketpair(AF_INET, SOCK_STREAM, 0, fds));
    SHOW(socketpair(AF_UNIX, SOCK_STREAM, 0, null_ptr));
    SHOW(pipe(null_ptr));
    SHOW(pipe2(fds, 0x7fff0000));
    SHOW(open("/nonexistent/observe", O_RDONLY));
    SHOW(open(null_ptr, O_RDONLY));
    SHOW(openat(-5, "relative", O_RDONLY));
    SHOW(creat("/nonexistent/observe", 0600));
    SHOW(read(-1, buf, sizeof buf));
    SHOW(write(999, buf, 1));
    SHOW(recv(998, buf, 1, 0));
    SHOW(send(997, buf, 1, 0));
    SHOW(close(996));
    SHOW(close(1 << 30));
    SHOW(connect(995, (struct sockaddr *)&a, sizeof a));
    SHOW(accept(-1, NULL, NULL));
    SHOW(accept4(1 << 30, NULL, NULL, 0));
    int s;
    SHOW((s = socket(AF_INET, SOCK_STREAM, 0)) >= 0);                  /* the first: the log is made */
    SHOW(accept(s, NULL, NULL));                                       /* not listening */
    SHOW(accept4(s, NULL, NULL, 0x7fff0000));                          /* bad flags */
    int nul = open("/dev/null", O_RDONLY);
    SHOW(accept(nul, NULL, NULL));                                     /* not a socket */
    SHOW(send(s, buf, 1, MSG_NOSIGNAL));                               /* not connected */
    SHOW(recv(s, buf, 0, MSG_DONTWAIT));
    SHOW(shutdown(s, SHUT_RDWR));
    SHOW(connect(s, (struct sockaddr *)&a, 3));                        /* bad length */
    SHOW(connect(s, bad_ptr, sizeof a));                               /* bad pointer */
    SHOW(connect(s, wild_ptr, sizeof a));
    SHOW(connect(s, (struct sockaddr *)&a, sizeof a));                 /* refused */
    SHOW(connect(s, NULL, sizeof a));
    SHOW(getsockopt(s, SOL_SOCKET, SO_ERROR, NULL, NULL));
    SHOW(getsockopt(s, SOL_SOCKET, SO_ERROR, bad_ptr, &alen));
    SHOW(getsockopt(-1, SOL_SOCKET, SO_ERROR, buf, &alen));
    SHOW(getsockopt(nul, SOL_SOCKET, SO_ERROR, buf, &alen));
    SHOW(dup(-1));
    SHOW(dup2(-1, 100));
    SHOW(dup2(s, -5));
    SHOW(dup2(s, s));
    SHOW(dup3(s, s, 0));
    SHOW(dup3(s, 100, 0x7fff0000));
    SHOW(fcntl(s, F_DUPFD, -1));
    SHOW(fcntl(-1, F_DUPFD_CLOEXEC, 0));
    SHOW(fcntl(s, F_DUPFD, 1 << 30));
    SHOW(close_range(5, 3, 0));
    SHOW(close_range(1 << 29, 1 << 30, 0xff));
    closefrom(1 << 30);
    SHOW(close(s));
    SHOW(close(s));                                                    /* closed twice */
    SHOW(send(s, buf, 1, MSG_NOSIGNAL));                               /* closed socket */
    SHOW(recv(s, buf, 1, 0));
    SHOW(shutdown(s, SHUT_RD));
    SHOW(shutdown(nul, SHUT_RD));
    close(nul);
    SHOW(getsockopt(s, SOL_SOCKET, SO_ERROR, buf, &alen));
}

/* Sends and receives with bad pointers, counts and flags, on live sockets. */
static void bad_transfers(int closed_port)
{
    char buf[16] = "x";
    struct sockaddr_in a = loopback(closed_port);
    int sv[2], l;
    tcp_pair(sv, &l);
    SHOW(send(sv[0], bad_ptr, 10, MSG_NOSIGNAL));
    SHOW(send(sv[0], buf, 0, 0));
    SHOW(write(sv[0], bad_ptr, 10));
    SHOW(send(sv[0], buf, 1, 0));
    SHOW(recv(sv[1], bad_ptr, 10, MSG_DONTWAIT));                      /* a byte is waiting */
    SHOW(read(sv[1], bad_ptr, 10));
    SHOW(recv(sv[1], buf, 0, 0));
    SHOW(read(sv[1], buf, 0));
    SHOW(recv(sv[1], buf, sizeof buf, 0));                             /* the byte, at last */
    struct iovec iov = { buf, 0 }, bad_iov = { bad_ptr, 10 };
    SHOW(writev(sv[0], &iov, 1));
    SHOW(writev(sv[0], null_ptr, 1));
    SHOW(writev(sv[0], &bad_iov, 1));
    SHOW(writev(sv[0], &iov, too_many));
    SHOW(readv(sv[1], &iov, minus_one));
    SHOW(readv(sv[1], null_ptr, 1));
    SHOW(readv(sv[1], &iov, 0));
    struct msghdr bad_name = { .msg_name = bad_ptr, .msg_namelen = 16, .msg_iov = &iov, .msg_iovlen = 1 };
    SHOW(sendmsg(sv[0], null_ptr, 0));
    SHOW(sendmsg(sv[0], bad_ptr, 0));
    SHOW(sendmsg(sv[0], wild_ptr, 0));
    SHOW(send(sv[0], wild_ptr, 10, 0));
    SHOW(getsockopt(sv[0], SOL_SOCKET, SO_ERROR, wild_ptr, &(socklen_t){ 4 }));
    SHOW(fcntl(l, F_SETFL, O_NONBLOCK));
    SHOW(accept4(l, wild_ptr, &(socklen_t){ 16 }, SOCK_NONBLOCK));
    SHOW(accept(l, wild_ptr, &(socklen_t){ 16 }));
    SHOW(recvmsg(sv[1], null_ptr, MSG_DONTWAIT));
    SHOW(recvmsg(sv[1], &bad_name, MSG_DONTWAIT));
    SHOW(sendmmsg(sv[0], null_ptr, 1, 0));
    SHOW(sendmmsg(sv[0], bad_ptr, 0, 0));
    SHOW(recvmmsg(sv[1], null_ptr, 1, MSG_DONTWAIT, NULL));
    SHOW(recvmmsg(sv[1], bad_ptr, 0, MSG_DONTWAIT, NULL));
    SHOW(sendfile(sv[0], -1, NULL, 10));
    int nul = open("/dev/null", O_RDONLY);
    SHOW(sendfile(sv[0], nul, bad_ptr, 10));
    SHOW(sendfile(-1, nul, NULL, 10));
    close(nul);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    SHOW(sendto(u, buf, 1, 0, (struct sockaddr *)&a, 2));
    SHOW(sendto(u, buf, 1, 0, bad_ptr, sizeof a));
    SHOW(recvfrom(u, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL));
    SHOW(sendto(u, bad_ptr, 100, 0, (struct sockaddr *)&a, sizeof a)); /* bad pointer */
    socklen_t alen = sizeof a;
    SHOW(recvfrom(u, buf, sizeof buf, MSG_DONTWAIT, bad_ptr, &alen));
    SHOW(recvfrom(u, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&a, bad_ptr));
    SHOW(sendto(u, buf, 1, 0, wild_ptr, sizeof a));
    SHOW(sendto(u, buf, 1, 0, (struct sockaddr *)&a, sizeof a));      /* refused: nobody there */
    SHOW(recvfrom(u, buf, sizeof buf, MSG_DONTWAIT, wild_ptr, &alen));
    SHOW(shutdown(u, 99));
    SHOW(close(u));
    close(sv[0]);
    close(sv[1]);
    close(l);
}

/* The readiness waits, with bad sets, counts, timeouts and masks. */
static void bad_waits(void)
{
    struct timeval tv0 = { 0, 0 }, tv_bad = { 0, -1 };
    struct timespec ts0 = { 0, 0 }, ts_bad = { 0, 2000000000 };
    struct epoll_event ev = { .events = EPOLLIN };
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SHOW(poll(null_ptr, 1, 0));
    SHOW(poll(bad_ptr, 1, 0));
    SHOW(poll(NULL, 0, 0));
    SHOW(poll(wild_ptr, 1, 0));
    SHOW(ppoll(bad_ptr, 1, &ts0, NULL));
    SHOW(ppoll(NULL, 0, &ts_bad, NULL));
    SHOW(ppoll(NULL, 0, &ts0, bad_ptr));
    SHOW(select(-1, NULL, NULL, NULL, NULL));
    SHOW(select(s + 1, bad_ptr, NULL, NULL, &tv0));
    SHOW(select(0, NULL, NULL, NULL, &tv_bad));
    SHOW(pselect(s + 1, bad_ptr, NULL, NULL, &ts0, NULL));
    SHOW(pselect(0, NULL, NULL, NULL, &ts_bad, NULL));
    SHOW(epoll_create(0));
    SHOW(epoll_create(minus_one));
    SHOW(epoll_create1(0x7fff0000));
    int ep = epoll_create1(0);
    SHOW(ep >= 0);
    SHOW(epoll_ctl(-1, EPOLL_CTL_ADD, s, &ev));
    SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, s, NULL));
    SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, s, bad_ptr));
    SHOW(epoll_ctl(ep, 99, s, &ev));
    SHOW(epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev));                        /* not in the set */
    SHOW(epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL));
    SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev));                       /* itself */
    int nul = open("/dev/null", O_RDONLY);
    SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, nul, &ev));                      /* cannot be polled */
    close(nul);
    SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
    SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));                        /* twice */
    SHOW(epoll_wait(s, null_ptr, 1, 0));                               /* not an epoll fd */
    SHOW(epoll_wait(ep, null_ptr, 1, 0));
    SHOW(epoll_wait(ep, &ev, 0, 0));
    SHOW(epoll_wait(ep, &ev, minus_one, 0));
    SHOW(epoll_wait(ep, bad_ptr, 1, 0));                               /* s is ready: EPOLLHUP */
    SHOW(epoll_wait(ep, wild_ptr, 1, 0));
    SHOW(epoll_ctl(ep, EPOLL_CTL_MOD, s, wild_ptr));
    SHOW(epoll_pwait(ep, &ev, 1, 0, bad_ptr));
    SHOW(epoll_pwait2(ep, &ev, 1, &ts_bad, NULL));
    SHOW(epoll_pwait2(-1, &ev, 1, &ts0, NULL));
    SHOW(close(ep));
    SHOW(close(s));
}

static void bad_resolution(void)
{
    struct addrinfo *res = NULL, hints = { .ai_family = 12345 };
    SHOW(getaddrinfo(NULL, NULL, NULL, &res));
    SHOW(getaddrinfo("localhost", "80", &hints, &res));
    hints.ai_family = AF_INET;
    hints.ai_flags = 0x7fff0000;
    SHOW(getaddrinfo("localhost", "80", &hints, &res));
    hints.ai_flags = AI_NUMERICHOST;
    SHOW(getaddrinfo("not a number", "80", &hints, &res));
    SHOW(getaddrinfo("127.0.0.1", "no-such-service-name", &hints, &res));
}

static int errors(int closed_port)
{
    alarm(20); /* a call that blocks here is a failure, not a hang */
    char *pages = mmap(NULL, 3 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    wild_ptr = pages + 4096;
    bad_descriptors(closed_port);
    bad_transfers(closed_port);
    bad_waits();
    bad_resolution();
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

/* One round of the blocking waits, each interrupted by the timer. */
static void interrupted_waits(int fd, int restart)
{
    char c;
    struct pollfd p = { fd, POLLIN, 0 };
    arm(restart);
    SHOW(poll(&p, 1, 1000));
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    arm(restart);
    SHOW(epoll_wait(ep, &ev, 1, 1000));
    close(ep);
    fd_set s;
    FD_ZERO(&s);
    FD_SET(fd, &s);
    arm(restart);
    SHOW(select(fd + 1, &s, NULL, NULL, NULL));
    if (!restart) {
        arm(0);
        SHOW(recv(fd, &c, 1, 0));
    }
}

/* A listener whose accept queue is full (backlog 0, one connection
 * waiting): the next connect to it blocks, its SYNs dropped, until a slot
 * frees. */
static int full_listener(struct sockaddr_in *a, int *queued)
{
    socklen_t len = sizeof *a;
    *a = loopback(0);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)a, sizeof *a);
    listen(l, 0);
    getsockname(l, (struct sockaddr *)a, &len);
    *queued = socket(AF_INET, SOCK_STREAM, 0);
    connect(*queued, (struct sockaddr *)a, sizeof *a);
    return l;
}

static int eintr(void)
{
    int sv[2], l;
    char c;
    tcp_pair(sv, &l);
    interrupted_waits(sv[0], 0);
    struct sockaddr_in full;
    int queued, fl = full_listener(&full, &queued);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    arm(0);
    SHOW(connect(s, (struct sockaddr *)&full, sizeof full));
    close(s); /* abandons its SYNs, so the slot freed below is the next one's */
    /* With SA_RESTART: poll, epoll_wait and select still fail with EINTR
     * (signal(7)); connect and recv are restarted and complete. */
    interrupted_waits(sv[0], 1);
    pid_t child = fork();
    if (child == 0) {
        usleep(200000);
        int a = accept(fl, NULL, NULL); /* frees the queue's slot */
        usleep(150000);
        send(sv[1], "x", 1, 0);
        sleep(3); /* keep the accepted connection until the parent is done */
        close(a);
        _exit(0);
    }
    s = socket(AF_INET, SOCK_STREAM, 0);
    arm(1);
    SHOW(connect(s, (struct sockaddr *)&full, sizeof full));
    arm(1);
    SHOW(recv(sv[0], &c, 1, 0));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(s);
    close(queued);
    close(fl);
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
