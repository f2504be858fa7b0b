/* obs_wrap.c — the functions libobserve.so exports in place of libc's.
 *
 * Each exported function is one line calling a static obs_*() that has the
 * same shape everywhere: look the fd up; if it is not tracked, call the real
 * function at once.  Otherwise: read the clock if the call needs an entry
 * time, make the real call, read the clock, record, and return exactly
 * what the real call returned, errno as it left it (the bookkeeping never
 * changes errno: obs.h).
 */
#include "obs.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/syscall.h>

#define OBS_EXPORT __attribute__((visibility("default")))

/* ---- the common tails ----------------------------------------------------
 * After a call that moved bytes (errno: obs.h). */

static inline ssize_t obs_after_out(struct obs_fd *e, int fd, ssize_t r, uint64_t t0,
                                    const struct sockaddr *to, socklen_t tolen)
{
    if (r > 0) {
        uint64_t t1 = obs_now();
        obs_on_out(e, fd, (size_t)r, t0, t1, to, tolen);
        obs_account(t1);
    } else {
        obs_on_nothing_moved(e, 1, t0, r < 0 ? errno : 0);
    }
    return r;
}

static inline ssize_t obs_after_in(struct obs_fd *e, int fd, ssize_t r, uint64_t t0,
                                   const struct sockaddr *from, socklen_t fromlen)
{
    if (r > 0) {
        uint64_t t1 = obs_now();
        obs_on_in(e, fd, (size_t)r, t0, t1, from, fromlen);
        obs_account(t1);
    } else {
        obs_on_nothing_moved(e, 0, t0, r < 0 ? errno : 0);
    }
    return r;
}

static inline void obs_fresh(int fd)
{
    if (fd >= 0 && obs_fds)
        obs_on_fresh_fd(fd);
}

/* ---- sockets and descriptors -------------------------------------------- */

static int obs_socket(int domain, int type, int protocol)
{
    int fd = REAL(socket)(domain, type, protocol);
    if (fd >= 0 && obs_fds)
        obs_on_socket(fd, domain, type);
    return fd;
}

static int obs_socketpair(int domain, int type, int protocol, int sv[2])
{
    int r = REAL(socketpair)(domain, type, protocol, sv);
    if (r == 0) {
        obs_fresh(sv[0]);
        obs_fresh(sv[1]);
    }
    return r;
}

static int obs_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e)
        return REAL(connect)(fd, sa, len);
    uint64_t t0 = obs_now();
    int r = REAL(connect)(fd, sa, len);
    int err = errno;
    uint64_t t1 = obs_now();
    /* the kernel read the address unless it said EFAULT or the length kept
     * it from reading (0, 1, or more than any address) */
    int sa_read = (r == 0 || err != EFAULT) && len >= sizeof(sa_family_t) && len <= sizeof(struct sockaddr_storage);
    obs_on_connect(e, fd, sa_read ? sa : NULL, sa_read ? len : 0, r, r == 0 ? 0 : err, t0, t1);
    return r;
}

static int obs_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags, int plain)
{
    int readable = obs_ptr_plausible(sa) && obs_ptr_plausible(len);
    socklen_t cap = readable ? *len : 0;
    int r = plain ? REAL(accept)(fd, sa, len) : REAL(accept4)(fd, sa, len, flags);
    if (r >= 0 && obs_fds) {
        socklen_t got = cap ? (*len < cap ? *len : cap) : 0;
        obs_on_accept(r, got ? sa : NULL, got, obs_now());
    }
    return r;
}

static int obs_close(int fd)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e)
        return REAL(close)(fd);
    obs_detach(fd, obs_now());
    return REAL(close)(fd);
}

static int obs_shutdown(int fd, int how)
{
    struct obs_fd *e = obs_lookup(fd);
    if (e)
        obs_on_shutdown(e, obs_now());
    return REAL(shutdown)(fd, how);
}

static int obs_dup2(int oldfd, int newfd, int flags, int which)
{
    if (!obs_fds)
        return which == 2 ? REAL(dup2)(oldfd, newfd) : REAL(dup3)(oldfd, newfd, flags);
    uint64_t t0 = obs_lookup(newfd) ? obs_now() : 0;
    int r = which == 2 ? REAL(dup2)(oldfd, newfd) : REAL(dup3)(oldfd, newfd, flags);
    if (r >= 0 && oldfd != newfd)
        obs_on_dup(oldfd, r, t0);
    return r;
}

static int obs_dup(int oldfd)
{
    int r = REAL(dup)(oldfd);
    if (r >= 0 && obs_fds)
        obs_on_dup(oldfd, r, 0);
    return r;
}

static int obs_fcntl(int fd, int cmd, void *arg, int is64)
{
    int r = is64 ? REAL(fcntl64)(fd, cmd, arg) : REAL(fcntl)(fd, cmd, arg);
    if (r >= 0 && obs_fds && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
        obs_on_dup(fd, r, 0);
    return r;
}

static void obs_closed_range(unsigned first, unsigned last, uint64_t t0)
{
    int hi = obs_fd_hiwater;
    for (unsigned fd = first; fd <= last && (int)fd <= hi; fd++)
        obs_detach((int)fd, t0);
}

static int obs_close_range(unsigned first, unsigned last, int flags)
{
    if (!REAL(close_range)) {
        errno = ENOSYS;
        return -1;
    }
    uint64_t t0 = obs_fds ? obs_now() : 0;
    int r = REAL(close_range)(first, last, flags);
    if (r == 0 && obs_fds && !(flags & CLOSE_RANGE_CLOEXEC))
        obs_closed_range(first, last, t0);
    return r;
}

static void obs_closefrom(int lowfd)
{
    uint64_t t0 = obs_fds ? obs_now() : 0;
    REAL(closefrom)(lowfd);
    if (obs_fds && lowfd >= 0)
        obs_closed_range((unsigned)lowfd, ~0u, t0);
}

static int obs_fresh_result(int r)
{
    if (r >= 0 && obs_fds)
        obs_on_fresh_fd(r);
    return r;
}

static int obs_pipe_result(int r, const int fds[2])
{
    if (r == 0) {
        obs_fresh_result(fds[0]);
        obs_fresh_result(fds[1]);
    }
    return r;
}

/* ---- bytes out ---------------------------------------------------------- */

static ssize_t obs_send(int fd, const void *buf, size_t n, int flags)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e)
        return REAL(send)(fd, buf, n, flags);
    uint64_t t0 = obs_entry_time(e, 1);
    return obs_after_out(e, fd, REAL(send)(fd, buf, n, flags), t0, NULL, 0);
}

static ssize_t obs_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
                          socklen_t tolen)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e)
        return REAL(sendto)(fd, buf, n, flags, to, tolen);
    uint64_t t0 = obs_entry_time(e, 1);
    return obs_after_out(e, fd, REAL(sendto)(fd, buf, n, flags, to, tolen), t0, to, to ? tolen : 0);
}

static ssize_t obs_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e)
        return REAL(sendmsg)(fd, msg, flags);
    uint64_t t0 = obs_entry_time(e, 1);
    ssize_t r = REAL(sendmsg)(fd, msg, flags);
    if (r <= 0) /* msg may be what the kernel refused: not ours to read */
        return r;
    return obs_after_out(e, fd, r, t0, msg->msg_name, msg->msg_name ? msg->msg_namelen : 0);
}

static ssize_t obs_write(int fd, const void *buf, size_t n)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e)
        return REAL(write)(fd, buf, n);
    uint64_t t0 = obs_entry_time(e, 1);
    return obs_after_out(e, fd, REAL(write)(fd, buf, n), t0, NULL, 0);
}

static ssize_t obs_writev(int fd, const struct iovec *iov, int cnt)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e)
        return REAL(writev)(fd, iov, cnt);
    uint64_t t0 = obs_entry_time(e, 1);
    return obs_after_out(e, fd, REAL(writev)(fd, iov, cnt), t0, NULL, 0);
}

static ssize_t obs_sendfile(int out, int in, off_t *off, size_t n, int is64)
{
    struct obs_fd *e = obs_lookup(out);
    if (!e)
        return is64 ? REAL(sendfile64)(out, in, off, n) : REAL(sendfile)(out, in, off, n);
    uint64_t t0 = obs_entry_time(e, 1);
    ssize_t r = is64 ? REAL(sendfile64)(out, in, off, n) : REAL(sendfile)(out, in, off, n);
    return obs_after_out(e, out, r, t0, NULL, 0);
}

/* Each message of sendmmsg/recvmmsg is a call of its own for the record. */
static int obs_sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e)
        return REAL(sendmmsg)(fd, v, n, flags);
    uint64_t t0 = obs_entry_time(e, 1);
    int r = REAL(sendmmsg)(fd, v, n, flags);
    for (int i = 0; i < r; i++)
        obs_after_out(e, fd, v[i].msg_len, i ? 0 : t0, v[i].msg_hdr.msg_name,
                      v[i].msg_hdr.msg_name ? v[i].msg_hdr.msg_namelen : 0);
    return r;
}

/* ---- bytes in ------------------------------------------------------------ */

static ssize_t obs_recv(int fd, void *buf, size_t n, int flags)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e || (flags & MSG_PEEK))
        return REAL(recv)(fd, buf, n, flags);
    uint64_t t0 = obs_entry_time(e, 0);
    return obs_after_in(e, fd, REAL(recv)(fd, buf, n, flags), t0, NULL, 0);
}

static ssize_t obs_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e || (flags & MSG_PEEK))
        return REAL(recvfrom)(fd, buf, n, flags, from, len);
    socklen_t cap = obs_ptr_plausible(from) && obs_ptr_plausible(len) ? *len : 0;
    uint64_t t0 = obs_entry_time(e, 0);
    ssize_t r = REAL(recvfrom)(fd, buf, n, flags, from, len);
    socklen_t got = cap && r >= 0 ? (*len < cap ? *len : cap) : 0;
    return obs_after_in(e, fd, r, t0, got ? from : NULL, got);
}

static ssize_t obs_recvmsg(int fd, struct msghdr *msg, int flags)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e || (flags & MSG_PEEK) || !obs_ptr_plausible(msg))
        return REAL(recvmsg)(fd, msg, flags);
    /* the kernel reports the address's full length even when it had to cut
     * it to fit the caller's buffer: never read past what the caller gave */
    socklen_t cap = obs_ptr_plausible(msg->msg_name) ? msg->msg_namelen : 0;
    uint64_t t0 = obs_entry_time(e, 0);
    ssize_t r = REAL(recvmsg)(fd, msg, flags);
    socklen_t got = r >= 0 && cap ? (msg->msg_namelen < cap ? msg->msg_namelen : cap) : 0;
    return obs_after_in(e, fd, r, t0, got ? msg->msg_name : NULL, got);
}

static int obs_recvmmsg(int fd, struct mmsghdr *v, unsigned n, int flags, struct timespec *tmo)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e || (flags & MSG_PEEK) || !obs_ptr_plausible(v))
        return REAL(recvmmsg)(fd, v, n, flags, tmo);
    /* as in recvmsg: the address lengths given, to read no further (for
     * the first OBS_MMSG_NAMES messages; later ones count without a source) */
    enum { OBS_MMSG_NAMES = 64 };
    socklen_t cap[OBS_MMSG_NAMES];
    for (unsigned i = 0; i < n && i < OBS_MMSG_NAMES; i++)
        cap[i] = obs_ptr_plausible(v[i].msg_hdr.msg_name) ? v[i].msg_hdr.msg_namelen : 0;
    uint64_t t0 = obs_entry_time(e, 0);
    int r = REAL(recvmmsg)(fd, v, n, flags, tmo);
    for (int i = 0; i < r; i++) {
        socklen_t len = i < OBS_MMSG_NAMES ? v[i].msg_hdr.msg_namelen : 0;
        socklen_t got = i < OBS_MMSG_NAMES && cap[i] ? (len < cap[i] ? len : cap[i]) : 0;
        obs_after_in(e, fd, v[i].msg_len, i ? 0 : t0, got ? v[i].msg_hdr.msg_name : NULL, got);
    }
    return r;
}

static ssize_t obs_read(int fd, void *buf, size_t n)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e)
        return REAL(read)(fd, buf, n);
    uint64_t t0 = obs_entry_time(e, 0);
    return obs_after_in(e, fd, REAL(read)(fd, buf, n), t0, NULL, 0);
}

static ssize_t obs_readv(int fd, const struct iovec *iov, int cnt)
{
    struct obs_fd *e = obs_lookup(fd);
    if (!e)
        return REAL(readv)(fd, iov, cnt);
    uint64_t t0 = obs_entry_time(e, 0);
    return obs_after_in(e, fd, REAL(readv)(fd, iov, cnt), t0, NULL, 0);
}

static int obs_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    int r = REAL(getsockopt)(fd, level, name, val, len);
    if (r == 0 && level == SOL_SOCKET && name == SO_ERROR && val && len && *len >= sizeof(int)) {
        struct obs_fd *e = obs_lookup(fd);
        if (e)
            obs_on_sockopt_error(e, *(int *)val, obs_now());
    }
    return r;
}

static int obs_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                           struct addrinfo **res)
{
    if (!obs_fds)
        return REAL(getaddrinfo)(node, service, hints, res);
    uint64_t t0 = obs_now();
    int r = REAL(getaddrinfo)(node, service, hints, res);
    if (r == 0 && res && *res)
        obs_on_resolved(*res, t0, obs_now());
    return r;
}

/* ---- event waits -------------------------------------------------------- */

static uint32_t obs_fdset_count(int nfds, const fd_set *r, const fd_set *w, const fd_set *x)
{
    const unsigned long *sets[3] = { (const unsigned long *)r, (const unsigned long *)w,
                                     (const unsigned long *)x };
    const int bits = (int)(8 * sizeof(unsigned long));
    uint32_t n = 0;
    for (int s = 0; s < 3; s++) {
        if (!sets[s])
            continue;
        for (int i = 0; i * bits < nfds; i++) {
            unsigned long word = sets[s][i];
            if ((i + 1) * bits > nfds)
                word &= (1ul << (nfds - i * bits)) - 1;
            n += (uint32_t)__builtin_popcountl(word);
        }
    }
    return n;
}

static void obs_fdset_ready(int nfds, const fd_set *r, const fd_set *w, const fd_set *x, uint64_t t1)
{
    const unsigned long *rs = (const unsigned long *)r, *ws = (const unsigned long *)w,
                        *xs = (const unsigned long *)x;
    const int bits = (int)(8 * sizeof(unsigned long));
    for (int i = 0; i * bits < nfds; i++) {
        unsigned long rw = rs ? rs[i] : 0, ww = ws ? ws[i] : 0, xw = xs ? xs[i] : 0;
        unsigned long any = rw | ww | xw;
        if ((i + 1) * bits > nfds)
            any &= (1ul << (nfds - i * bits)) - 1;
        while (any) {
            int b = __builtin_ctzl(any);
            any &= any - 1;
            struct obs_fd *e = obs_lookup(i * bits + b);
            if (e)
                obs_on_ready(e, i * bits + b, (rw >> b) & 1, (ww >> b) & 1, (xw >> b) & 1, t1);
        }
    }
}

/* A set given (not NULL) that we cannot read before the kernel does. */
static inline int obs_set_bad(const fd_set *s) { return s && !obs_ptr_plausible(s); }

static int obs_select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv,
                      const struct timespec *ts, const sigset_t *mask, enum obs_mech mech)
{
    if (!obs_fds || nfds < 0 || obs_set_bad(r) || obs_set_bad(w) || obs_set_bad(x))
        return mech == OBS_MECH_SELECT ? REAL(select)(nfds, r, w, x, tv) : REAL(pselect)(nfds, r, w, x, ts, mask);
    /* The kernel reads no further than its fd table, which may end well
     * before a careless nfds: nor do we, as far as we can know it. */
    int known = obs_fd_hiwater + 1 > FD_SETSIZE ? obs_fd_hiwater + 1 : FD_SETSIZE;
    int seen = nfds < known ? nfds : known;
    uint32_t interest = obs_fdset_count(seen, r, w, x);
    uint64_t t0 = obs_now();
    int ret = mech == OBS_MECH_SELECT ? REAL(select)(nfds, r, w, x, tv) : REAL(pselect)(nfds, r, w, x, ts, mask);
    int err = errno;
    uint64_t t1 = obs_now();
    obs_on_wait(mech, interest, ret, err, t0, t1);
    if (ret > 0)
        obs_fdset_ready(seen, r, w, x, t1);
    return ret;
}

static void obs_pollfd_ready(const struct pollfd *fds, nfds_t n, uint64_t t1)
{
    for (nfds_t i = 0; i < n; i++) {
        short ev = fds[i].revents;
        if (!ev)
            continue;
        struct obs_fd *e = obs_lookup(fds[i].fd);
        if (e)
            obs_on_ready(e, fds[i].fd, ev & (POLLIN | POLLRDNORM), ev & (POLLOUT | POLLWRNORM), ev & (POLLERR | POLLHUP), t1);
    }
}

static int obs_poll(struct pollfd *fds, nfds_t n, int timeout, const struct timespec *ts,
                    const sigset_t *mask, enum obs_mech mech)
{
    if (!obs_fds)
        return mech == OBS_MECH_POLL ? REAL(poll)(fds, n, timeout) : REAL(ppoll)(fds, n, ts, mask);
    uint64_t t0 = obs_now();
    int ret = mech == OBS_MECH_POLL ? REAL(poll)(fds, n, timeout) : REAL(ppoll)(fds, n, ts, mask);
    int err = errno;
    uint64_t t1 = obs_now();
    obs_on_wait(mech, (uint32_t)n, ret, err, t0, t1);
    if (ret > 0)
        obs_pollfd_ready(fds, n, t1);
    return ret;
}

/* epoll reports the application's epoll_data, not the fd: we match the
 * events whose data is the fd itself (libevent, libuv, CPython, redis, wrk
 * register them so) against what epoll_ctl registered. */
static void obs_epoll_ready(int epfd, const struct epoll_event *ev, int n, uint64_t t1)
{
    for (int i = 0; i < n; i++) {
        uint64_t data = ev[i].data.u64;
        struct obs_fd *e = obs_lookup((int)(uint32_t)data);
        if (e && OBS_LD(e->ep_fd) == epfd && OBS_LD(e->ep_data) == data)
            obs_on_ready(e, (int)(uint32_t)data, ev[i].events & EPOLLIN, ev[i].events & EPOLLOUT,
                         ev[i].events & (EPOLLERR | EPOLLHUP), t1);
    }
}

static int obs_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout,
                          const struct timespec *ts, const sigset_t *mask, enum obs_mech mech)
{
#define OBS_EPOLL_REAL()                                                              \
    (mech == OBS_MECH_EPOLL_WAIT    ? REAL(epoll_wait)(epfd, ev, max, timeout)        \
     : mech == OBS_MECH_EPOLL_PWAIT ? REAL(epoll_pwait)(epfd, ev, max, timeout, mask) \
                                    : REAL(epoll_pwait2)(epfd, ev, max, ts, mask))
    if (mech == OBS_MECH_EPOLL_PWAIT2 && !REAL(epoll_pwait2)) {
        errno = ENOSYS;
        return -1;
    }
    if (!obs_fds)
        return OBS_EPOLL_REAL();
    struct obs_fd *ep = obs_lookup(epfd);
    uint32_t interest = ep && OBS_LD(ep->kind) == OBS_FD_EPOLL ? OBS_LD(ep->ep_count) : 0;
    uint64_t t0 = obs_now();
    int ret = OBS_EPOLL_REAL();
    int err = errno;
    uint64_t t1 = obs_now();
    obs_on_wait(mech, interest, ret, err, t0, t1);
    if (ret > 0)
        obs_epoll_ready(epfd, ev, ret, t1);
    return ret;
#undef OBS_EPOLL_REAL
}

static int obs_epoll_created(int fd)
{
    if (fd >= 0 && obs_fds)
        obs_on_epoll_created(fd);
    return fd;
}

static int obs_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    int r = REAL(epoll_ctl)(epfd, op, fd, ev);
    if (r == 0 && obs_fds)
        obs_on_epoll_ctl(epfd, op, fd, ev);
    return r;
}

/* ---- syscall(2) --------------------------------------------------------------
 * libuv (node, and every program built on it) closes descriptors with
 * syscall(SYS_close) and sends datagrams with syscall(SYS_sendmmsg), past
 * libc's wrappers.  The calls we track, made this way, take the same path
 * as through their libc names; each libc wrapper is the same system call
 * with the same arguments, result and errno.  close is made as the raw
 * call the program asked for (libuv uses it because it is no cancellation
 * point).  Every other number goes straight through. */
static long obs_syscall(long nr, long a, long b, long c, long d, long e, long f)
{
    switch (nr) {
    case SYS_close: {
        if (obs_lookup((int)a))
            obs_detach((int)a, obs_now());
        return REAL(syscall)(nr, a);
    }
    case SYS_clone: { /* the raw call returns twice on this stack when it is given none */
        long r = REAL(syscall)(nr, a, b, c, d, e, f);
        if (r == 0 && !(a & CLONE_VM))
            obs_clone_child();
        return r;
    }
    case SYS_socket: return obs_socket((int)a, (int)b, (int)c);
    case SYS_connect: return obs_connect((int)a, (const struct sockaddr *)b, (socklen_t)c);
    case SYS_accept: return obs_accept4((int)a, (struct sockaddr *)b, (socklen_t *)c, 0, 1);
    case SYS_accept4: return obs_accept4((int)a, (struct sockaddr *)b, (socklen_t *)c, (int)d, 0);
    case SYS_shutdown: return obs_shutdown((int)a, (int)b);
    case SYS_dup: return obs_dup((int)a);
#ifdef SYS_dup2 /* the older calls, which arm64 and other newer ports do not have */
    case SYS_dup2: return obs_dup2((int)a, (int)b, 0, 2);
#endif
    case SYS_dup3: return obs_dup2((int)a, (int)b, (int)c, 3);
    case SYS_read: return obs_read((int)a, (void *)b, (size_t)c);
    case SYS_write: return obs_write((int)a, (const void *)b, (size_t)c);
    case SYS_readv: return obs_readv((int)a, (const struct iovec *)b, (int)c);
    case SYS_writev: return obs_writev((int)a, (const struct iovec *)b, (int)c);
    case SYS_sendto:
        return obs_sendto((int)a, (const void *)b, (size_t)c, (int)d, (const struct sockaddr *)e, (socklen_t)f);
    case SYS_recvfrom:
        return obs_recvfrom((int)a, (void *)b, (size_t)c, (int)d, (struct sockaddr *)e, (socklen_t *)f);
    case SYS_sendmsg: return obs_sendmsg((int)a, (const struct msghdr *)b, (int)c);
    case SYS_recvmsg: return obs_recvmsg((int)a, (struct msghdr *)b, (int)c);
    case SYS_sendmmsg: return obs_sendmmsg((int)a, (struct mmsghdr *)b, (unsigned)c, (int)d);
    case SYS_recvmmsg: return obs_recvmmsg((int)a, (struct mmsghdr *)b, (unsigned)c, (int)d, (struct timespec *)e);
    case SYS_epoll_ctl: return obs_epoll_ctl((int)a, (int)b, (int)c, (struct epoll_event *)d);
#ifdef SYS_epoll_wait
    case SYS_epoll_wait:
        return obs_epoll_wait((int)a, (struct epoll_event *)b, (int)c, (int)d, NULL, NULL, OBS_MECH_EPOLL_WAIT);
#endif
    case SYS_epoll_pwait: /* libc's passes the kernel's sigset size: take only that one */
        if (f == _NSIG / 8)
            return obs_epoll_wait((int)a, (struct epoll_event *)b, (int)c, (int)d, NULL, (const sigset_t *)e,
                                  OBS_MECH_EPOLL_PWAIT);
        break;
#ifdef SYS_poll
    case SYS_poll: return obs_poll((struct pollfd *)a, (nfds_t)b, (int)c, NULL, NULL, OBS_MECH_POLL);
#endif
    }
    return REAL(syscall)(nr, a, b, c, d, e, f);
}

/* ---- the exported symbols ------------------------------------------------ */

OBS_EXPORT int socket(int d, int t, int p) { return obs_socket(d, t, p); }
OBS_EXPORT int socketpair(int d, int t, int p, int sv[2]) { return obs_socketpair(d, t, p, sv); }
OBS_EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len) { return obs_connect(fd, sa, len); }
OBS_EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len) { return obs_accept4(fd, sa, len, 0, 1); }
OBS_EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *len, int fl) { return obs_accept4(fd, sa, len, fl, 0); }
OBS_EXPORT int close(int fd) { return obs_close(fd); }
OBS_EXPORT int shutdown(int fd, int how) { return obs_shutdown(fd, how); }
OBS_EXPORT int dup(int fd) { return obs_dup(fd); }
OBS_EXPORT int dup2(int o, int n) { return obs_dup2(o, n, 0, 2); }
OBS_EXPORT int dup3(int o, int n, int fl) { return obs_dup2(o, n, fl, 3); }
OBS_EXPORT int close_range(unsigned f, unsigned l, int fl) { return obs_close_range(f, l, fl); }
OBS_EXPORT void closefrom(int low) { obs_closefrom(low); }

OBS_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return obs_fcntl(fd, cmd, arg, 0);
}

OBS_EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return obs_fcntl(fd, cmd, arg, 1);
}

static mode_t obs_open_mode(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

#define OBS_OPEN_LIKE(name, ...)                               \
    {                                                          \
        va_list ap;                                            \
        va_start(ap, flags);                                   \
        mode_t mode = obs_open_mode(flags, ap);                \
        va_end(ap);                                            \
        return obs_fresh_result(REAL(name)(__VA_ARGS__, mode)); \
    }
OBS_EXPORT int open(const char *path, int flags, ...) OBS_OPEN_LIKE(open, path, flags)
OBS_EXPORT int open64(const char *path, int flags, ...) OBS_OPEN_LIKE(open64, path, flags)
OBS_EXPORT int openat(int dfd, const char *path, int flags, ...) OBS_OPEN_LIKE(openat, dfd, path, flags)
OBS_EXPORT int openat64(int dfd, const char *path, int flags, ...) OBS_OPEN_LIKE(openat64, dfd, path, flags)
OBS_EXPORT int creat(const char *path, mode_t mode) { return obs_fresh_result(REAL(creat)(path, mode)); }
OBS_EXPORT int pipe(int fds[2]) { return obs_pipe_result(REAL(pipe)(fds), fds); }
OBS_EXPORT int pipe2(int fds[2], int fl) { return obs_pipe_result(REAL(pipe2)(fds, fl), fds); }

OBS_EXPORT ssize_t send(int fd, const void *b, size_t n, int fl) { return obs_send(fd, b, n, fl); }
OBS_EXPORT ssize_t sendto(int fd, const void *b, size_t n, int fl, const struct sockaddr *to, socklen_t tl)
{ return obs_sendto(fd, b, n, fl, to, tl); }
OBS_EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int fl) { return obs_sendmsg(fd, m, fl); }
OBS_EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned n, int fl) { return obs_sendmmsg(fd, v, n, fl); }
OBS_EXPORT ssize_t write(int fd, const void *b, size_t n) { return obs_write(fd, b, n); }
OBS_EXPORT ssize_t writev(int fd, const struct iovec *v, int c) { return obs_writev(fd, v, c); }
OBS_EXPORT ssize_t sendfile(int o, int i, off_t *off, size_t n) { return obs_sendfile(o, i, off, n, 0); }
OBS_EXPORT ssize_t sendfile64(int o, int i, off64_t *off, size_t n) { return obs_sendfile(o, i, off, n, 1); }

OBS_EXPORT ssize_t recv(int fd, void *b, size_t n, int fl) { return obs_recv(fd, b, n, fl); }
OBS_EXPORT ssize_t recvfrom(int fd, void *b, size_t n, int fl, struct sockaddr *from, socklen_t *len)
{ return obs_recvfrom(fd, b, n, fl, from, len); }
OBS_EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int fl) { return obs_recvmsg(fd, m, fl); }
OBS_EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned n, int fl, struct timespec *t)
{ return obs_recvmmsg(fd, v, n, fl, t); }
OBS_EXPORT ssize_t read(int fd, void *b, size_t n) { return obs_read(fd, b, n); }
OBS_EXPORT ssize_t readv(int fd, const struct iovec *v, int c) { return obs_readv(fd, v, c); }

OBS_EXPORT int getsockopt(int fd, int lv, int nm, void *v, socklen_t *l) { return obs_getsockopt(fd, lv, nm, v, l); }
OBS_EXPORT int getaddrinfo(const char *node, const char *svc, const struct addrinfo *h, struct addrinfo **res)
{ return obs_getaddrinfo(node, svc, h, res); }

OBS_EXPORT int select(int n, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{ return obs_select(n, r, w, x, tv, NULL, NULL, OBS_MECH_SELECT); }
OBS_EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts, const sigset_t *m)
{ return obs_select(n, r, w, x, NULL, ts, m, OBS_MECH_PSELECT); }
OBS_EXPORT int poll(struct pollfd *f, nfds_t n, int tmo) { return obs_poll(f, n, tmo, NULL, NULL, OBS_MECH_POLL); }
OBS_EXPORT int ppoll(struct pollfd *f, nfds_t n, const struct timespec *ts, const sigset_t *m)
{ return obs_poll(f, n, 0, ts, m, OBS_MECH_PPOLL); }
OBS_EXPORT long syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long), d = va_arg(ap, long),
         e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    return obs_syscall(nr, a, b, c, d, e, f);
}

OBS_EXPORT int epoll_create(int size) { return obs_epoll_created(REAL(epoll_create)(size)); }
OBS_EXPORT int epoll_create1(int fl) { return obs_epoll_created(REAL(epoll_create1)(fl)); }
OBS_EXPORT int epoll_ctl(int ep, int op, int fd, struct epoll_event *ev) { return obs_epoll_ctl(ep, op, fd, ev); }
OBS_EXPORT int epoll_wait(int ep, struct epoll_event *ev, int max, int tmo)
{ return obs_epoll_wait(ep, ev, max, tmo, NULL, NULL, OBS_MECH_EPOLL_WAIT); }
OBS_EXPORT int epoll_pwait(int ep, struct epoll_event *ev, int max, int tmo, const sigset_t *m)
{ return obs_epoll_wait(ep, ev, max, tmo, NULL, m, OBS_MECH_EPOLL_PWAIT); }
OBS_EXPORT int epoll_pwait2(int ep, struct epoll_event *ev, int max, const struct timespec *ts, const sigset_t *m)
{ return obs_epoll_wait(ep, ev, max, 0, ts, m, OBS_MECH_EPOLL_PWAIT2); }

/* SIGBUS is the library's once its log is mapped (obs_sigbus_action): the
 * program's action is kept and run for every SIGBUS not caused by the log. */
OBS_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    return sig == SIGBUS ? obs_sigbus_action(act, old) : REAL(sigaction)(sig, act, old);
}

OBS_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    if (sig != SIGBUS)
        return REAL(signal)(sig, handler);
    struct sigaction act = { .sa_handler = handler, .sa_flags = SA_RESTART }, old; /* glibc's signal() */
    sigemptyset(&act.sa_mask);
    sigaddset(&act.sa_mask, sig);
    return obs_sigbus_action(&act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

/* vfork's child shares our memory: anything it did through us (a close or a
 * dup2 before exec) would change the parent's records.  Like valgrind, we
 * make it a fork, which POSIX allows a program to rely on no less. */
OBS_EXPORT pid_t vfork(void) { return REAL(fork)(); }

/* clone() without CLONE_VM makes a new process, as fork does, but runs no
 * atfork handler: the child would write into its parent's log under the
 * parent's pid.  Its function is started through ours, which gives it a log
 * of its own first.  The trampoline's arguments live in this frame, which
 * the child has a copy of.  With CLONE_VM (a thread, or a vfork-like spawn
 * that shares our memory) nothing changes. */
struct obs_clone_call {
    int (*fn)(void *);
    void *arg;
};

static int obs_clone_start(void *p)
{
    struct obs_clone_call *call = p;
    obs_clone_child();
    return call->fn(call->arg);
}

OBS_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    void *ptid = va_arg(ap, void *), *tls = va_arg(ap, void *), *ctid = va_arg(ap, void *);
    va_end(ap);
    if (flags & CLONE_VM)
        return REAL(clone)(fn, stack, flags, arg, ptid, tls, ctid);
    struct obs_clone_call call = { fn, arg };
    return REAL(clone)(obs_clone_start, stack, flags, &call, ptid, tls, ctid);
}

/* A signal handler that leaves by a long jump never returns to the call it
 * interrupted, which may have been our own bookkeeping (obs_track.c). */
OBS_EXPORT void longjmp(jmp_buf env, int val) { obs_on_longjmp(); REAL(longjmp)(env, val); __builtin_unreachable(); }
OBS_EXPORT void _longjmp(jmp_buf env, int val) { obs_on_longjmp(); REAL(_longjmp)(env, val); __builtin_unreachable(); }
OBS_EXPORT void siglongjmp(sigjmp_buf env, int val) { obs_on_longjmp(); REAL(siglongjmp)(env, val); __builtin_unreachable(); }
OBS_EXPORT void __longjmp_chk(sigjmp_buf env, int val) { obs_on_longjmp(); REAL(__longjmp_chk)(env, val); __builtin_unreachable(); }

/* _FORTIFY_SOURCE entry points: a failed check goes to glibc (which aborts
 * as it would have); otherwise the call is ours like the plain one. */
OBS_EXPORT ssize_t __read_chk(int fd, void *b, size_t n, size_t blen)
{ return n > blen ? REAL(__read_chk)(fd, b, n, blen) : obs_read(fd, b, n); }
OBS_EXPORT ssize_t __recv_chk(int fd, void *b, size_t n, size_t blen, int fl)
{ return n > blen ? REAL(__recv_chk)(fd, b, n, blen, fl) : obs_recv(fd, b, n, fl); }
OBS_EXPORT ssize_t __recvfrom_chk(int fd, void *b, size_t n, size_t blen, int fl, struct sockaddr *a, socklen_t *l)
{ return n > blen ? REAL(__recvfrom_chk)(fd, b, n, blen, fl, a, l) : obs_recvfrom(fd, b, n, fl, a, l); }
OBS_EXPORT int __poll_chk(struct pollfd *f, nfds_t n, int tmo, size_t flen)
{ return flen / sizeof *f < n ? REAL(__poll_chk)(f, n, tmo, flen) : obs_poll(f, n, tmo, NULL, NULL, OBS_MECH_POLL); }
OBS_EXPORT int __ppoll_chk(struct pollfd *f, nfds_t n, const struct timespec *ts, const sigset_t *m, size_t flen)
{ return flen / sizeof *f < n ? REAL(__ppoll_chk)(f, n, ts, m, flen) : obs_poll(f, n, 0, ts, m, OBS_MECH_PPOLL); }
OBS_EXPORT long int __fdelt_chk(long int d) { return REAL(__fdelt_chk)(d); }
