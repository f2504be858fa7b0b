/* obs.h — internals of libobserve.so shared by its six parts, each of
 * which calls only those below it:
 *   obs_wrap.c   the exported interposers, one thin shape for all;
 *   obs_init.c   start, configuration, exit, fork and clone;
 *   obs_track.c  the phase logic (what each call means for T1–T7);
 *   obs_log.c    the per-process log file and its records;
 *   obs_clock.c  the timestamps;
 *   obs_libc.c   the real libc functions (REAL()).
 *
 * Hot path contract (docs/design.md, principle 2): an fd that is not a tracked
 * socket costs one table lookup and the real call; a tracked call costs one
 * or two clock reads and a few stores into the mapped log.  No malloc, no
 * lock, no system call of our own, no dlsym.
 */
#ifndef OBS_H
#define OBS_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* The TSC fast clock exists on x86 only; elsewhere every timestamp is a
 * clock_gettime() (obs_clock.c never turns the fast path on). */
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define OBS_HAVE_TSC 1
static inline uint64_t obs_tsc(void) { return __rdtsc(); }
static inline void obs_cpu_relax(void) { __builtin_ia32_pause(); }
#else
#define OBS_HAVE_TSC 0
static inline uint64_t obs_tsc(void) { return 0; }
static inline void obs_cpu_relax(void) { __asm__ __volatile__("" ::: "memory"); }
#endif

#include "../common/obs_format.h"

#define OBS_HIDDEN __attribute__((visibility("hidden")))

/* errno, one rule: the bookkeeping never changes it.  A function of ours
 * that makes a system call of its own keeps errno around it (most simply
 * with OBS_KEEP_ERRNO); the wrappers rely on this and never restore errno
 * themselves (test_behaviour.errno_values_are_unchanged shows errno after
 * every call, success included). */
#define OBS_KEEP_ERRNO(...)              \
    do {                                 \
        int obs_errno_kept_ = errno;     \
        __VA_ARGS__;                     \
        errno = obs_errno_kept_;         \
    } while (0)
#define OBS_LIKELY(x)   __builtin_expect(!!(x), 1)
#define OBS_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* glibc's _FORTIFY_SOURCE entry points, declared here because the headers
 * only declare them when fortification is on. */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                       struct sockaddr *addr, socklen_t *addrlen);
int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo,
                const sigset_t *ss, size_t fdslen);
long int __fdelt_chk(long int d);
void __longjmp_chk(sigjmp_buf env, int val) __attribute__((noreturn));
int fcntl64(int fd, int cmd, ...);
int close_range(unsigned int first, unsigned int last, int flags);
void closefrom(int lowfd);
int epoll_pwait2(int epfd, struct epoll_event *ev, int maxevents,
                 const struct timespec *timeout, const sigset_t *ss);

/* Every libc function we reach, bound once with dlsym(RTLD_NEXT). */
#define OBS_LIBC_SYMBOLS(X) \
    X(socket) X(socketpair) X(connect) X(accept) X(accept4) \
    X(send) X(sendto) X(sendmsg) X(sendmmsg) X(recv) X(recvfrom) X(recvmsg) X(recvmmsg) \
    X(read) X(write) X(readv) X(writev) X(sendfile) X(sendfile64) \
    X(close) X(shutdown) X(dup) X(dup2) X(dup3) X(fcntl) X(fcntl64) X(close_range) X(closefrom) \
    X(select) X(pselect) X(poll) X(ppoll) \
    X(epoll_create) X(epoll_create1) X(epoll_ctl) X(epoll_wait) X(epoll_pwait) X(epoll_pwait2) \
    X(getsockopt) X(getaddrinfo) X(fork) X(clone) X(longjmp) X(_longjmp) X(siglongjmp) X(__longjmp_chk) \
    X(open) X(open64) X(openat) X(openat64) X(creat) X(pipe) X(pipe2) \
    X(__read_chk) X(__recv_chk) X(__recvfrom_chk) X(__poll_chk) X(__ppoll_chk) X(__fdelt_chk) X(syscall) \
    X(sigaction) X(signal)

#define OBS_X_LIBC_PTR(name) __typeof__(name) *name;
struct obs_libc { OBS_LIBC_SYMBOLS(OBS_X_LIBC_PTR) };
extern OBS_HIDDEN struct obs_libc obs_libc;
OBS_HIDDEN void *obs_bind_libc(void **slot, const char *name);

/* The real function, bound on its first use (obs_libc.c): a process pays
 * the lookup only for the functions it calls. */
static inline void *obs_real(void **slot, const char *name)
{
    void *f = __atomic_load_n(slot, __ATOMIC_RELAXED);
    return OBS_LIKELY(f != NULL) ? f : obs_bind_libc(slot, name);
}
#define REAL(name) ((__typeof__(obs_libc.name))obs_real((void **)&obs_libc.name, #name))

/* ---- the fd table ------------------------------------------------------ */
enum obs_fd_kind {
    OBS_FD_NONE = 0,
    OBS_FD_TCP,    /* an AF_INET/AF_INET6 stream socket */
    OBS_FD_UDP,    /* an AF_INET/AF_INET6 datagram socket */
    OBS_FD_EPOLL,  /* an epoll instance: we count its interest set */
};

struct obs_fd {
    uint32_t kind;     /* enum obs_fd_kind; written last when an entry is set */
    uint32_t ep_count; /* EPOLL: descriptors registered */
    void    *rec;      /* TCP: struct obs_conn_slot *, UDP: struct obs_udp_slot *, or NULL */
    uint64_t ep_data;  /* sockets: the epoll_data the application registered */
    int32_t  ep_fd;    /* sockets: the epoll instance it was registered with, or -1 */
    uint32_t pad;
};

/* Entries are reused when the kernel reuses a descriptor number, which
 * orders the two uses in a way ThreadSanitizer cannot see: every field is
 * read and written with relaxed atomics (plain moves on x86). */
#define OBS_LD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define OBS_ST(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

#define OBS_FD_CAP (1u << 20) /* the table's most entries: fds at or above are not tracked (counted) */
extern OBS_HIDDEN struct obs_fd *obs_fds;
extern OBS_HIDDEN unsigned obs_fd_cap; /* entries in the table: OBS_FD_CAP, fewer under RLIMIT_AS */
extern OBS_HIDDEN int obs_fd_hiwater;  /* the highest fd the table has held */
OBS_HIDDEN void obs_note_fd(int fd);

static inline struct obs_fd *obs_lookup(int fd)
{
    if (OBS_UNLIKELY((unsigned)fd >= obs_fd_cap || obs_fds == NULL))
        return NULL;
    struct obs_fd *e = &obs_fds[fd];
    return __atomic_load_n(&e->kind, __ATOMIC_ACQUIRE) ? e : NULL;
}

/* CLOCK_MONOTONIC nanoseconds: extrapolated from the TSC between per-thread
 * anchors where that is trustworthy (obs_clock.c), else clock_gettime(). */
struct obs_clock_anchor {
    uint64_t tsc0, ns0;
};
extern OBS_HIDDEN int obs_clock_tsc;
extern OBS_HIDDEN uint64_t obs_clock_mult, obs_clock_window;
extern OBS_HIDDEN __thread struct obs_clock_anchor obs_tls_clock __attribute__((tls_model("initial-exec")));
OBS_HIDDEN uint64_t obs_clock_slow(void);
OBS_HIDDEN void obs_clock_init(void);
/* Where to publish the time timestamps began to come from the TSC (the
 * log's counter, once there is a log): the clock calls nothing of ours. */
OBS_HIDDEN void obs_clock_publish_to(uint64_t *since_ns);

static inline uint64_t obs_now(void)
{
    if (OBS_HAVE_TSC && OBS_LIKELY(__atomic_load_n(&obs_clock_tsc, __ATOMIC_RELAXED))) {
        uint64_t d = obs_tsc() - obs_tls_clock.tsc0;
        if (OBS_LIKELY(d < __atomic_load_n(&obs_clock_window, __ATOMIC_RELAXED)))
            return obs_tls_clock.ns0 + ((d * __atomic_load_n(&obs_clock_mult, __ATOMIC_RELAXED)) >> 32);
    }
    return obs_clock_slow();
}

/* ---- records in the log (writer's view: fields plus runtime state) ----
 * A connection's phase; obs_track.c's table says which call moves it where. */
enum obs_phase {
    OBS_PH_IDLE,       /* up, no bytes yet, or a greeting's turn is over */
    OBS_PH_CONNECTING, /* a non-blocking connect in progress: outcome unknown */
    OBS_PH_REQ,        /* a request is being sent (its first call has entered) */
    OBS_PH_RESP,       /* its response is being received */
    OBS_PH_FAILED,     /* the connect failed */
};

struct obs_xchg_slot {
    struct obs_rec_hdr h;
    struct obs_xchg_fields f;
};

struct obs_conn_slot {
    struct obs_rec_hdr h;
    struct obs_conn_fields f;
    /* runtime, not part of the record */
    uint32_t refs;   /* descriptors that refer to this connection */
    uint32_t phase;  /* enum obs_phase */
    struct obs_xchg_slot *xchg; /* the current exchange, or NULL */
    uint64_t req_t0;     /* entry of the request call that began the current exchange */
    uint32_t pending;    /* 1: that call has entered, its exchange has no record yet; 2: being made */
    uint32_t prev_phase; /* the phase before it, restored if it moves nothing */
};

struct obs_dgram_slot {
    struct obs_rec_hdr h;
    struct obs_dgram_fields f;
};

#define OBS_UDP_PENDING 8
struct obs_udp_slot {
    struct obs_rec_hdr h;
    struct obs_udp_fields f;
    uint32_t refs;
    uint32_t npending;
    struct { struct obs_addr peer; uint32_t age; struct obs_dgram_slot *rec; } pending[OBS_UDP_PENDING];
};

struct obs_wait_slot {
    struct obs_rec_hdr h;
    struct obs_wait_fields f;
};

/* What a call that moves bytes notes at its entry, for its return:
 * 0 nothing, OBS_TOK_INREQ it entered while a request was being sent, or
 * else its entry time (a datagram's send; a request call that began an
 * exchange, or the first send on a connection still connecting).  The
 * request direction is out for a client, in for an accepted connection.
 * An exchange begins at the *entry* of its first request call, so a
 * response that another thread receives while that call is still in the
 * kernel belongs to it (obs_track.c). */
#define OBS_TOK_INREQ 1u
OBS_HIDDEN uint64_t obs_on_request_entry(struct obs_conn_slot *c);

static inline uint64_t obs_entry_time(const struct obs_fd *e, int out)
{
    int kind = OBS_LD(e->kind);
    if (kind == OBS_FD_UDP) /* a datagram's response time runs from its send's entry */
        return out ? obs_now() : 0;
    struct obs_conn_slot *c = OBS_LD(e->rec);
    if (kind != OBS_FD_TCP || !c || !(out ^ (int)c->f.side))
        return 0;
    if (OBS_LIKELY(__atomic_load_n(&c->phase, __ATOMIC_RELAXED) == OBS_PH_REQ))
        return OBS_TOK_INREQ;
    return obs_on_request_entry(c);
}

_Static_assert(sizeof(struct obs_conn_slot) <= 4 * OBS_UNIT, "conn slot");
_Static_assert(sizeof(struct obs_xchg_slot) <= 2 * OBS_UNIT, "xchg slot");
_Static_assert(sizeof(struct obs_udp_slot) <= 7 * OBS_UNIT, "udp slot");
_Static_assert(sizeof(struct obs_dgram_slot) <= 2 * OBS_UNIT, "dgram slot");
_Static_assert(sizeof(struct obs_wait_slot) <= 1 * OBS_UNIT, "wait slot");

/* obs_init.c */
OBS_HIDDEN void obs_clone_child(void);

/* obs_log.c: the log and its records (calls only the clock) */
struct obs_config {      /* the log's settings, filled from OBSERVE_* at start (obs_init.c) */
    char dir[PATH_MAX];  /* absolute log directory */
    char tags[512];      /* OBSERVE_TAGS, validated */
    int wait_mode_all;   /* OBSERVE_WAITS=all */
    uint64_t capacity;   /* record bytes a log may hold */
    int argc;            /* the command line our constructor was given (NULL argv: none) */
    char **argv;
};
extern OBS_HIDDEN struct obs_config obs_cfg;
OBS_HIDDEN void *obs_rec_alloc(enum obs_rec_type type);
OBS_HIDDEN void obs_rec_publish(void *slot, uint32_t flags);
OBS_HIDDEN void obs_rec_finalize(void *slot, size_t fields_size);
OBS_HIDDEN int obs_log_ensure(void);
OBS_HIDDEN struct obs_file_header *obs_log_header(void);
OBS_HIDDEN struct obs_wait_agg *obs_wait_aggs(void); /* the header's, or those kept until it exists */
OBS_HIDDEN void obs_count(size_t counter_offset, uint64_t n);
#define OBS_COUNT(field, n) obs_count(offsetof(struct obs_counters, field), (n))
OBS_HIDDEN int obs_wait_mode_all(void);
OBS_HIDDEN void obs_log_start(void);
OBS_HIDDEN void obs_log_disable(void);
/* fork and clone: the child's log is not its parent's */
struct obs_log_inherited {
    struct obs_file_header *hdr; /* the parent's mapping, or NULL: it had no log */
    size_t len;
};
OBS_HIDDEN void obs_log_fork_prepare(void);
OBS_HIDDEN void obs_log_fork_parent(void);
OBS_HIDDEN struct obs_log_inherited obs_log_fork_child(void);
OBS_HIDDEN struct obs_log_inherited obs_log_clone_child(void);
/* SIGBUS is ours once the log is mapped (a log truncated by someone else):
 * the program's own action is kept here and run for every fault not ours. */
OBS_HIDDEN int obs_sigbus_action(const struct sigaction *act, struct sigaction *old);
/* One line on stderr, where the program's stderr was at start (obs_say_init). */
OBS_HIDDEN void obs_say_init(void);
OBS_HIDDEN void obs_warn(const char *what, const char *detail);
/* Text and numbers appended at *at in buf, without snprintf. */
OBS_HIDDEN void obs_put(char *buf, size_t len, size_t *at, const char *text);
OBS_HIDDEN void obs_put_num(char *buf, size_t len, size_t *at, unsigned long long v, unsigned base);

/* obs_track.c: what each call means */
OBS_HIDDEN void obs_on_socket(int fd, int domain, int type);
OBS_HIDDEN void obs_on_fresh_fd(int fd);
OBS_HIDDEN void obs_on_epoll_created(int fd);
OBS_HIDDEN void obs_on_connect(struct obs_fd *e, int fd, const struct sockaddr *sa, socklen_t len,
                               int ret, int err, uint64_t t0, uint64_t t1);
OBS_HIDDEN void obs_on_accept(int fd, const struct sockaddr *sa, socklen_t salen, uint64_t t1);
OBS_HIDDEN void obs_on_out(struct obs_fd *e, int fd, size_t n, uint64_t t0, uint64_t t1,
                           const struct sockaddr *to, socklen_t tolen);
OBS_HIDDEN void obs_on_nothing_moved(struct obs_fd *e, int out, uint64_t tok, int err);
OBS_HIDDEN void obs_on_in(struct obs_fd *e, int fd, size_t n, uint64_t t0, uint64_t t1,
                          const struct sockaddr *from, socklen_t fromlen);
OBS_HIDDEN void obs_on_ready(struct obs_fd *e, int fd, int readable, int writable, int error, uint64_t t1);
OBS_HIDDEN void obs_on_sockopt_error(struct obs_fd *e, int value, uint64_t t1);
OBS_HIDDEN void obs_on_shutdown(struct obs_fd *e, uint64_t t0);
OBS_HIDDEN void obs_detach(int fd, uint64_t t_close);
OBS_HIDDEN void obs_on_dup(int oldfd, int newfd, uint64_t t0);
OBS_HIDDEN void obs_on_epoll_ctl(int epfd, int op, int fd, const struct epoll_event *ev);
OBS_HIDDEN void obs_on_wait(enum obs_mech mech, uint32_t interest, int ready, int err,
                            uint64_t t0, uint64_t t1);
OBS_HIDDEN void obs_on_resolved(const struct addrinfo *res, uint64_t t0, uint64_t t1);
OBS_HIDDEN void obs_fork_child(void);
OBS_HIDDEN void obs_close_all_at_exit(uint64_t t_exit);
OBS_HIDDEN void obs_later_forget(void);
OBS_HIDDEN void obs_on_longjmp(void);

/* The wrappers read an argument of the caller's only where the kernel has
 * just read it without fault (after a successful call), except the few that
 * must know a length before the call (an address buffer's size, a select
 * set's bits).  Those first ask this: NULL and the first page, the bad
 * pointers programs really pass, go to the kernel untouched and come back
 * EFAULT as without us.  A wild pointer elsewhere is the caller's contract
 * broken twice (README, "What is guaranteed"). */
static inline int obs_ptr_plausible(const void *p) { return (uintptr_t)p >= 4096; }

/* Sampled measurement of the library's own time (see OBS_COUNTERS). */
#define OBS_SAMPLE_PERIOD 1024u
extern OBS_HIDDEN __thread uint32_t obs_tls_calls __attribute__((tls_model("initial-exec")));
OBS_HIDDEN void obs_sample_own_time(uint64_t t1);
static inline void obs_account(uint64_t t1)
{
    if (OBS_UNLIKELY((++obs_tls_calls & (OBS_SAMPLE_PERIOD - 1)) == 0))
        obs_sample_own_time(t1);
}

#endif
