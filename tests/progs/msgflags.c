/* msgflags — the receive variants and flags a client may use, for the tests:
 *   msgflags short-name   recvmsg and recvmmsg on an IPv6 UDP socket into a
 *                         16-byte address buffer that ends where the mapping
 *                         ends: the kernel reports the full 28-byte length,
 *                         and whoever reads that many bytes faults
 *   msgflags peek PORT    on a TCP connection: MSG_PEEK then the real read
 *                         of the same bytes, MSG_WAITALL, and a UDP datagram
 *                         read with MSG_TRUNC into a short buffer
 *   msgflags mmsg PORT    sendmmsg/recvmmsg: 5 datagrams of sizes 10..50
 *                         between two UDP sockets and back, then an HTTP
 *                         request to PORT sent as 3 messages of one sendmmsg
 * Prints what each call returned: ok lines the test compares with the records.
 */
#define _GNU_SOURCE
#include "progs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static int udp6_pair(struct sockaddr_in6 *self)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len)) {
        perror("udp6");
        exit(1);
    }
    *self = a;
    return fd;
}

static int short_name(void)
{
    /* a 16-byte address buffer right before an inaccessible page */
    char *pages = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED || mprotect(pages + 4096, 4096, PROT_NONE) != 0)
        return 1;
    struct sockaddr *name = (struct sockaddr *)(pages + 4096 - 16);
    struct sockaddr_in6 self;
    int fd = udp6_pair(&self);
    char data[8] = "ping", buf[64];
    sendto(fd, data, 4, 0, (struct sockaddr *)&self, sizeof self);
    struct iovec iov = { buf, sizeof buf };
    struct msghdr m = { .msg_name = name, .msg_namelen = 16, .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t r = recvmsg(fd, &m, 0);
    printf("recvmsg=%zd namelen=%u\n", r, (unsigned)m.msg_namelen);
    sendto(fd, data, 4, 0, (struct sockaddr *)&self, sizeof self);
    struct mmsghdr mm = { .msg_hdr = { .msg_name = name, .msg_namelen = 16, .msg_iov = &iov, .msg_iovlen = 1 } };
    int n = recvmmsg(fd, &mm, 1, 0, NULL);
    printf("recvmmsg=%d len=%u namelen=%u\n", n, mm.msg_len, (unsigned)mm.msg_hdr.msg_namelen);
    close(fd);
    return 0;
}

static int peek(int port)
{
    int fd = dial_loopback(port);
    const char req[] = "GET / HTTP/1.0\r\n\r\n";
    send(fd, req, sizeof req - 1, 0);
    char buf[65536];
    ssize_t peeked = recv(fd, buf, 100, MSG_PEEK | MSG_WAITALL);
    ssize_t total = 0, r;
    r = recv(fd, buf, (size_t)peeked, MSG_WAITALL); /* the same bytes, for real */
    total += r > 0 ? r : 0;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        total += r;
    close(fd);
    printf("peeked=%zd received=%zd\n", peeked, total);
    struct sockaddr_in6 self;
    int u = udp6_pair(&self);
    char big[300];
    memset(big, 'x', sizeof big);
    sendto(u, big, sizeof big, 0, (struct sockaddr *)&self, sizeof self);
    ssize_t t = recv(u, buf, 10, MSG_TRUNC);
    printf("trunc=%zd\n", t);
    close(u);
    return 0;
}

/* n messages of sizes 10, 20, ... from one buffer */
static void fill(struct mmsghdr *m, struct iovec *iov, int n, char *data, struct sockaddr_in6 *to)
{
    for (int i = 0; i < n; i++) {
        iov[i] = (struct iovec){ data, (size_t)(10 * (i + 1)) };
        m[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = to, .msg_namelen = to ? sizeof *to : 0,
                                              .msg_iov = &iov[i], .msg_iovlen = 1 } };
    }
}

static int mmsg(int port)
{
    struct sockaddr_in6 a_addr, b_addr, from[8];
    int a = udp6_pair(&a_addr), b = udp6_pair(&b_addr);
    char data[64], bufs[8][64];
    memset(data, 'd', sizeof data);
    struct mmsghdr m[8];
    struct iovec iov[8];
    fill(m, iov, 5, data, &b_addr);
    int sent = sendmmsg(a, m, 5, 0);
    for (int i = 0; i < 8; i++) {
        iov[i] = (struct iovec){ bufs[i], sizeof bufs[i] };
        m[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &from[i], .msg_namelen = sizeof from[i],
                                              .msg_iov = &iov[i], .msg_iovlen = 1 } };
    }
    struct timespec tmo = { 2, 0 };
    int got = recvmmsg(b, m, 8, MSG_WAITFORONE, &tmo);
    long got_bytes = 0;
    for (int i = 0; i < got; i++)
        got_bytes += m[i].msg_len;
    fill(m, iov, 5, data, &a_addr);
    int replied = sendmmsg(b, m, 5, 0);
    for (int i = 0; i < 8; i++) {
        iov[i] = (struct iovec){ bufs[i], sizeof bufs[i] };
        m[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
    }
    int back = 0;
    while (back < replied) {
        int r = recvmmsg(a, m + back, (unsigned)(8 - back), MSG_WAITFORONE, &tmo);
        if (r <= 0)
            break;
        back += r;
    }
    printf("sent=%d received=%d received_bytes=%ld replied=%d back=%d\n", sent, got, got_bytes, replied, back);
    close(a);
    close(b);

    int fd = dial_loopback(port);
    char *parts[] = { "GET / HTTP/1.0\r\n", "Host: x\r\n", "\r\n" };
    long req = 0;
    for (int i = 0; i < 3; i++) {
        iov[i] = (struct iovec){ parts[i], strlen(parts[i]) };
        m[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
        req += (long)strlen(parts[i]);
    }
    int tcp_msgs = sendmmsg(fd, m, 3, 0);
    long resp = 0;
    ssize_t r;
    char buf[65536];
    while ((r = read(fd, buf, sizeof buf)) > 0)
        resp += r;
    close(fd);
    printf("tcp_messages=%d tcp_sent=%ld tcp_received=%ld\n", tcp_msgs, req, resp);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "short-name") == 0)
        return short_name();
    if (argc >= 3 && strcmp(argv[1], "peek") == 0)
        return peek(atoi(argv[2]));
    if (argc >= 3 && strcmp(argv[1], "mmsg") == 0)
        return mmsg(atoi(argv[2]));
    fprintf(stderr, "usage: msgflags short-name | peek PORT | mmsg PORT\n");
    return 2;
}
