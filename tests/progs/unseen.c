/* unseen — clients that move their bytes where an LD_PRELOAD library cannot
 * see them, for the tests of what libobserve does then (README, "What is
 * guaranteed"): run unharmed, record only what passed through libc's
 * symbols, and never give one connection's bytes to another.
 *   unseen raw PORT     connect through libc, then send, receive and close
 *                       with the syscall instruction itself, as Go programs
 *                       do; then a second connection, all through libc,
 *                       which gets the same fd number
 *   unseen syscall PORT the same through libc's syscall(2), as libuv does:
 *                       this one the library does see
 *   unseen splice PORT  the request written with write(2), the response
 *                       moved socket -> pipe with splice(2); a second
 *                       request moved pipe -> socket with splice(2)
 *   unseen uring PORT   connect through libc, send/receive/close through
 *                       io_uring (liburing); then a second connection
 *                       through libc
 * Each HTTP/1.0 request is answered and closed by the server.  Prints
 *   first_fd=F first_sent=S first_received=R second_fd=F second_sent=S second_received=R
 * or "unavailable: WHY" (exit 3) when io_uring cannot be set up here.
 */
#define _GNU_SOURCE
#include "progs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char req[] = "GET / HTTP/1.0\r\n\r\n";

/* The second connection, all through libc: it must be recorded exactly. */
static void plain_exchange(int port, int *fd_out, long *sent, long *received)
{
    int fd = dial_loopback(port);
    char buf[65536];
    ssize_t n;
    *fd_out = fd;
    *sent = send(fd, req, sizeof req - 1, 0);
    *received = 0;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        *received += n;
    close(fd);
}

static void report(int fd1, long s1, long r1, int port)
{
    int fd2;
    long s2, r2;
    plain_exchange(port, &fd2, &s2, &r2);
    printf("first_fd=%d first_sent=%ld first_received=%ld second_fd=%d second_sent=%ld second_received=%ld\n", fd1,
           s1, r1, fd2, s2, r2);
}

/* A system call made by the instruction itself, past every symbol. */
static long raw_syscall(long nr, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
    register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#else
    return syscall(nr, a, b, c, d, e, f); /* no inline form here: through libc */
#endif
}

static int raw(int port, int through_libc)
{
    int fd = dial_loopback(port);
    char buf[65536];
    long (*sys)(long, long, long, long, long, long, long) =
        through_libc ? (long (*)(long, long, long, long, long, long, long))syscall : raw_syscall;
    long sent = sys(SYS_sendto, fd, (long)req, sizeof req - 1, 0, 0, 0), received = 0, n;
    while ((n = sys(SYS_recvfrom, fd, (long)buf, sizeof buf, 0, 0, 0)) > 0)
        received += n;
    sys(SYS_close, fd, 0, 0, 0, 0, 0);
    report(fd, sent, received, port);
    return 0;
}

static int splices(int port)
{
    int fd = dial_loopback(port), p[2];
    char buf[65536];
    long sent = write(fd, req, sizeof req - 1), received = 0;
    ssize_t n;
    if (pipe(p) != 0)
        return 2;
    while ((n = splice(fd, NULL, p[1], NULL, 65536, 0)) > 0) {
        received += n;
        if (read(p[0], buf, (size_t)n) != n)
            return 2;
    }
    close(fd);
    /* the other way: a request moved from a pipe into the socket */
    fd = dial_loopback(port);
    if (write(p[1], req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
        return 2;
    long sent2 = splice(p[0], NULL, fd, NULL, sizeof req - 1, 0), received2 = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        received2 += n;
    close(fd);
    printf("first_sent=%ld first_received=%ld second_sent=%ld second_received=%ld\n", sent, received, sent2,
           received2);
    return 0;
}

/* One io_uring operation, waited for; returns its result. */
static int uring_one(struct io_uring *ring)
{
    struct io_uring_cqe *cqe;
    io_uring_submit(ring);
    if (io_uring_wait_cqe(ring, &cqe) != 0)
        return -EIO;
    int res = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    return res;
}

static int uring(int port)
{
    struct io_uring ring;
    int err = io_uring_queue_init(8, &ring, 0);
    if (err < 0) {
        printf("unavailable: io_uring_queue_init: %s\n", strerror(-err));
        return 3;
    }
    int fd = dial_loopback(port);
    char buf[65536];
    io_uring_prep_send(io_uring_get_sqe(&ring), fd, req, sizeof req - 1, 0);
    long sent = uring_one(&ring), received = 0;
    int n;
    do {
        io_uring_prep_recv(io_uring_get_sqe(&ring), fd, buf, sizeof buf, 0);
        n = uring_one(&ring);
        received += n > 0 ? n : 0;
    } while (n > 0);
    io_uring_prep_close(io_uring_get_sqe(&ring), fd);
    uring_one(&ring);
    io_uring_queue_exit(&ring);
    report(fd, sent, received, port);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "raw") == 0)
        return raw(atoi(argv[2]), 0);
    if (argc == 3 && strcmp(argv[1], "syscall") == 0)
        return raw(atoi(argv[2]), 1);
    if (argc == 3 && strcmp(argv[1], "splice") == 0)
        return splices(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "uring") == 0)
        return uring(atoi(argv[2]));
    fprintf(stderr, "usage: unseen raw PORT | syscall PORT | splice PORT | uring PORT\n");
    return 2;
}
