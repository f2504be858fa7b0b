/* netclient — a small HTTP/1.1 client for the tests: it makes connections
 * the way real clients do (a blocking connect, or a non-blocking one
 * completed through select, poll or epoll), sends keep-alive requests and
 * reads whole responses, from one or several threads.  It prints what it did
 * so the tests can compare with what libobserve recorded:
 *   conns=C failed=F requests=R bytes_sent=S bytes_received=B
 *   connect_errno=E   (per failed connect)
 * With --ports P1,P2,... thread t's c-th connection goes to port
 * P[(t + c) % n], so that descriptors freed by one thread are reused by
 * another for a different peer (the test of attribution under threads).
 * --pause-ms MS waits that long between the wait that reports a connect
 * done and the getsockopt(SO_ERROR) after it (with --send-at-once: between
 * the connect and the first send), so the tests can tell which event set
 * t_established;
 * --send-at-once sends on a non-blocking connect without waiting for it,
 * as some clients do; --leave-open keeps the last connection open and
 * returns from main, --leave-open=_exit leaves by _exit() instead.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { M_BLOCK, M_SELECT, M_POLL, M_EPOLL };
static enum mode mode = M_BLOCK;
static struct sockaddr_in server;
static int ports[64], nports;
static int requests = 1, conns = 1, threads = 1, timeout_ms = 5000, progress = 0;
static int pause_ms = 0, send_at_once = 0, leave_open = 0; /* leave_open: 1 return from main, 2 _exit */
static long total_conns, total_failed, total_requests, total_sent, total_received;
static pthread_mutex_t totals = PTHREAD_MUTEX_INITIALIZER;

/* Wait until fd is readable (want_out 0) or writable (1) with the chosen
 * mechanism.  Returns 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, int want_out)
{
    if (mode == M_SELECT) {
        fd_set s;
        FD_ZERO(&s);
        FD_SET(fd, &s);
        struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
        return select(fd + 1, want_out ? NULL : &s, want_out ? &s : NULL, NULL, &tv);
    }
    if (mode == M_POLL) {
        struct pollfd p = { fd, (short)(want_out ? POLLOUT : POLLIN), 0 };
        return poll(&p, 1, timeout_ms);
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = want_out ? EPOLLOUT : EPOLLIN, .data.fd = fd };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    int r = epoll_wait(ep, &ev, 1, timeout_ms);
    close(ep);
    return r;
}

static void pause_a_while(void)
{
    if (pause_ms)
        nanosleep(&(struct timespec){ pause_ms / 1000, (pause_ms % 1000) * 1000000L }, NULL);
}

static int open_connection(int *err, int port)
{
    struct sockaddr_in to = server;
    if (port)
        to.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM | (mode == M_BLOCK ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&to, sizeof to) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        *err = errno;
        close(fd);
        return -1;
    }
    if (send_at_once) {
        pause_a_while();
        return fd; /* the first send tells */
    }
    int r = wait_fd(fd, 1);
    pause_a_while(); /* between the wait and the question */
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (r <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
        *err = r == 0 ? ETIMEDOUT : soerr;
        close(fd);
        return -1;
    }
    return fd;
}

/* Not a constant, so that a _FORTIFY_SOURCE build checks it at run time
 * (through __recv_chk), as real clients' builds do. */
static volatile size_t recv_len = 65536;

/* Reads one response; returns its bytes or -1. */
static long read_response(int fd)
{
    char buf[65536];
    long have = 0, need = -1;
    size_t hdr_len = 0;
    char head[8192];
    for (;;) {
        if (mode != M_BLOCK && wait_fd(fd, 0) <= 0)
            return -1;
        ssize_t n = recv(fd, buf, recv_len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return -1;
        if (need < 0) {
            size_t take = (size_t)n < sizeof head - 1 - hdr_len ? (size_t)n : sizeof head - 1 - hdr_len;
            memcpy(head + hdr_len, buf, take);
            hdr_len += take;
            head[hdr_len] = '\0';
            char *end = strstr(head, "\r\n\r\n");
            if (end) {
                char *cl = strcasestr(head, "Content-Length:");
                need = (long)(end + 4 - head) + (cl ? atol(cl + 15) : 0);
            }
        }
        have += n;
        if (need >= 0 && have >= need)
            return have;
    }
}

static void *run(void *arg)
{
    int thread = (int)(long)arg;
    long c_ok = 0, c_fail = 0, reqs = 0, sent = 0, got = 0;
    char req[256];
    int len = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n",
                       inet_ntoa(server.sin_addr));
    for (int c = 0; c < conns; c++) {
        int err = 0;
        int fd = open_connection(&err, nports ? ports[(thread + c) % nports] : 0);
        if (fd < 0) {
            printf("connect_errno=%d\n", err);
            c_fail++;
            continue;
        }
        int refused = 0;
        for (int i = 0; i < requests; i++) {
            if (mode != M_BLOCK && !(send_at_once && i == 0) && wait_fd(fd, 1) <= 0)
                break;
            ssize_t n;
            while ((n = send(fd, req, (size_t)len, MSG_NOSIGNAL)) < 0 && errno == EAGAIN && send_at_once)
                wait_fd(fd, 1); /* still connecting */
            if (n < 0 && i == 0 && send_at_once) {
                printf("connect_errno=%d\n", errno);
                refused = 1;
            }
            if (n != len)
                break;
            sent += n;
            long r = read_response(fd);
            if (r < 0)
                break;
            got += r;
            reqs++;
        }
        if (refused) {
            c_fail++;
            close(fd);
            continue;
        }
        c_ok++;
        if (leave_open && c == conns - 1)
            continue; /* to exit() or _exit() */
        close(fd);
        if (progress) {
            /* after the close returned: the record of this connection is final */
            printf("done %d\n", c + 1);
            fflush(stdout);
        }
    }
    pthread_mutex_lock(&totals);
    total_conns += c_ok;
    total_failed += c_fail;
    total_requests += reqs;
    total_sent += sent;
    total_received += got;
    pthread_mutex_unlock(&totals);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1";
    int port = 0, c;
    static const struct option opts[] = {
        { "addr", 1, 0, 'a' }, { "port", 1, 0, 'p' },     { "mode", 1, 0, 'm' },    { "requests", 1, 0, 'r' },
        { "conns", 1, 0, 'c' }, { "threads", 1, 0, 't' }, { "timeout-ms", 1, 0, 'T' },
        { "progress", 0, 0, 'P' }, { "ports", 1, 0, 'L' }, { "pause-ms", 1, 0, 'w' },
        { "send-at-once", 0, 0, 's' }, { "leave-open", 2, 0, 'o' }, { 0, 0, 0, 0 },
    };
    while ((c = getopt_long(argc, argv, "a:p:m:r:c:t:T:PL:w:so::", opts, NULL)) != -1) {
        switch (c) {
        case 'a': addr = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'r': requests = atoi(optarg); break;
        case 'c': conns = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'T': timeout_ms = atoi(optarg); break;
        case 'P': progress = 1; break;
        case 'w': pause_ms = atoi(optarg); break;
        case 's': send_at_once = 1; break;
        case 'o': leave_open = optarg && !strcmp(optarg, "_exit") ? 2 : 1; break;
        case 'L':
            for (char *t = strtok(optarg, ","); t && nports < 64; t = strtok(NULL, ","))
                ports[nports++] = atoi(t);
            port = ports[0];
            break;
        case 'm':
            mode = !strcmp(optarg, "select") ? M_SELECT : !strcmp(optarg, "poll") ? M_POLL
                 : !strcmp(optarg, "epoll")  ? M_EPOLL  : M_BLOCK;
            break;
        default:
            fprintf(stderr, "usage: netclient --port P [--addr A] [--mode block|select|poll|epoll] "
                            "[--requests N] [--conns N] [--threads N] [--timeout-ms MS] [--progress] [--ports P1,P2,...]\n"
                            "                 [--pause-ms MS] [--send-at-once] [--leave-open[=_exit]]\n");
            return 2;
        }
    }
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &server.sin_addr) != 1 || port <= 0 || threads < 1 || threads > 256) {
        fprintf(stderr, "netclient: bad address, port or thread count\n");
        return 2;
    }
    pthread_t tid[256];
    for (int i = 0; i < threads; i++)
        pthread_create(&tid[i], NULL, run, (void *)(long)i);
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    printf("conns=%ld failed=%ld requests=%ld bytes_sent=%ld bytes_received=%ld\n", total_conns, total_failed,
           total_requests, total_sent, total_received);
    fflush(stdout);
    if (leave_open == 2)
        _exit(total_failed ? 1 : 0);
    return total_failed ? 1 : 0;
}
