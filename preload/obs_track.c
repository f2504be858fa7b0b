/* obs_track.c — what each interposed call means for the phase contract.
 *
 * docs/design.md fixes the timestamps; this file turns calls into them, by
 * the phase table of the TCP section below, which every write of a
 * connection's phase follows.  A TCP connection's record is reserved in the
 * log at connect()/accept() and its fields are updated in place.  A
 * request/response "exchange" begins at the entry of a request call made
 * after response bytes (or first); each exchange has its own record.  For a
 * client the request direction is out (send); for an accepted (server-side)
 * connection it is in.  Datagram sockets pair each datagram sent to a peer
 * with the next datagram received from that peer.
 */
#include "obs.h"

#include <netinet/in.h>
#include <string.h>

/* The descriptor table (obs.h), made at start by obs_init.c. */
OBS_HIDDEN struct obs_fd *obs_fds;
OBS_HIDDEN unsigned obs_fd_cap = OBS_FD_CAP;
OBS_HIDDEN int obs_fd_hiwater = -1;
OBS_HIDDEN __thread uint32_t obs_tls_calls __attribute__((tls_model("initial-exec")));

void obs_note_fd(int fd)
{
    int cur = __atomic_load_n(&obs_fd_hiwater, __ATOMIC_RELAXED);
    while (fd > cur && !__atomic_compare_exchange_n(&obs_fd_hiwater, &cur, fd, 1, __ATOMIC_RELAXED,
                                                     __ATOMIC_RELAXED))
        ;
}


/* A counter of one connection: one thread at a time uses a connection in
 * practice, so no locked instruction; relaxed atomics keep it well defined
 * (and ThreadSanitizer informed) when two do. */
#define OBS_ADD(field, n) __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)

/* ---- calls that arrive from a signal handler in the middle of ours ------
 * A handler may call us while this thread is between the loads and stores
 * of our bookkeeping of a record: the program's handler sends on the
 * connection its main loop was just sending on.  Updating the record then
 * would lose one of the two updates, or finalize an exchange the interrupted
 * code goes on writing (a damaged record).  So whatever changes a record
 * runs between obs_begin() and obs_end().  A call that arrives in between
 * can only come from a handler on this thread: it is queued (obs_later) and
 * applied, in order, before the interrupted call returns.  Changes to the
 * fd table alone (atomic exchanges) are made at once, so that a descriptor
 * number the kernel reuses meanwhile stays right.  Each thread has its own
 * queue; a full queue drops the call (counted in `dropped`). */
enum obs_later_what {
    LATER_TCP_OUT, LATER_TCP_IN, LATER_UDP_OUT, LATER_UDP_IN, LATER_READY,
    LATER_SOCKOPT, LATER_SHUTDOWN, LATER_CONNECT_AGAIN, LATER_RELEASE, LATER_NOTHING,
};

struct obs_later_call {
    uint8_t what;     /* enum obs_later_what */
    uint8_t kind;     /* LATER_RELEASE: enum obs_fd_kind */
    uint8_t has_addr; /* LATER_UDP_IN: addr is the source */
    uint8_t written;  /* set last: the slot is complete */
    int32_t a, b, c;  /* the call's small arguments */
    void *rec;        /* the record it changes */
    uint64_t n, t0, t1;
    struct obs_addr addr;
};

#define OBS_LATER_SLOTS 8 /* a power of two */
static __thread struct {
    uint32_t inside;     /* this thread is between obs_begin() and obs_end() */
    uint32_t head, tail; /* slots [head, tail) wait; only the drain moves head */
    struct obs_later_call q[OBS_LATER_SLOTS];
} obs_tls_later __attribute__((tls_model("initial-exec")));

#define OBS_SIGNAL_FENCE() __atomic_signal_fence(__ATOMIC_SEQ_CST)

static void obs_drain(void);
static void obs_apply_or_queue(const struct obs_later_call *call);

/* 1: go on with the bookkeeping (calls queued before it are applied first);
 * 0: this call interrupted our own bookkeeping, queue it with obs_later(). */
static inline int obs_begin(void)
{
    if (OBS_UNLIKELY(obs_tls_later.inside))
        return 0;
    obs_tls_later.inside = 1;
    OBS_SIGNAL_FENCE();
    if (OBS_UNLIKELY(obs_tls_later.head != obs_tls_later.tail))
        obs_drain();
    return 1;
}

/* Applies what handlers queued meanwhile, then lets the next call in.  A call
 * queued just before `inside` is cleared is caught by the second look, or
 * else by the obs_begin() of whoever comes next, before its own. */
static inline void obs_end(void)
{
    do {
        OBS_SIGNAL_FENCE();
        if (OBS_UNLIKELY(obs_tls_later.head != obs_tls_later.tail))
            obs_drain();
        obs_tls_later.inside = 0;
        OBS_SIGNAL_FENCE();
    } while (OBS_UNLIKELY(obs_tls_later.head != obs_tls_later.tail) && obs_begin());
}

/* Queues a call that interrupted our bookkeeping.  The slot is claimed with
 * one atomic add, so a handler interrupting this handler gets another. */
static void obs_later(const struct obs_later_call *call)
{
    uint32_t head = __atomic_load_n(&obs_tls_later.head, __ATOMIC_RELAXED);
    if (__atomic_load_n(&obs_tls_later.tail, __ATOMIC_RELAXED) - head >= OBS_LATER_SLOTS - 2) {
        OBS_COUNT(dropped, 1);
        return;
    }
    uint32_t slot = __atomic_fetch_add(&obs_tls_later.tail, 1, __ATOMIC_RELAXED);
    struct obs_later_call *q = &obs_tls_later.q[slot & (OBS_LATER_SLOTS - 1)];
    *q = *call; /* with `written` 0: the slot is not complete yet */
    OBS_SIGNAL_FENCE();
    q->written = 1;
}

/* ---- addresses ---------------------------------------------------------- */

static void obs_addr_set(struct obs_addr *a, const struct sockaddr *sa, socklen_t len)
{
    memset(a, 0, sizeof *a);
    if (!sa)
        return;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        a->family = AF_INET;
        a->port = ntohs(in->sin_port);
        memcpy(a->addr, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        a->family = AF_INET6;
        a->port = ntohs(in6->sin6_port);
        memcpy(a->addr, &in6->sin6_addr, 16);
    }
}

static int obs_addr_same(const struct obs_addr *a, const struct obs_addr *b)
{
    return a->family == b->family && a->port == b->port && memcmp(a->addr, b->addr, 16) == 0;
}

/* The rare system calls of the bookkeeping keep errno (obs.h). */
static void obs_local_addr(int fd, struct obs_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int got;
    OBS_KEEP_ERRNO(got = getsockname(fd, (struct sockaddr *)&ss, &len));
    if (got == 0)
        obs_addr_set(a, (struct sockaddr *)&ss, len);
}

static void obs_peer_addr(int fd, struct obs_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int got;
    OBS_KEEP_ERRNO(got = getpeername(fd, (struct sockaddr *)&ss, &len));
    if (got == 0)
        obs_addr_set(a, (struct sockaddr *)&ss, len);
}

/* ---- name resolution: a small ring of recent getaddrinfo() results ---- */

#define OBS_RESOLVE_RING 64
#define OBS_RESOLVE_ADDRS 4
static struct obs_resolution {
    uint64_t seq;  /* 0 while being written or once used */
    uint64_t t0, t1;
    uint32_t naddr;
    struct obs_addr addr[OBS_RESOLVE_ADDRS]; /* port ignored */
} obs_resolved[OBS_RESOLVE_RING];
static uint64_t obs_resolve_head;

void obs_on_resolved(const struct addrinfo *res, uint64_t t0, uint64_t t1)
{
    uint64_t n = __atomic_add_fetch(&obs_resolve_head, 1, __ATOMIC_RELAXED);
    struct obs_resolution *r = &obs_resolved[n % OBS_RESOLVE_RING];
    __atomic_store_n(&r->seq, 0, __ATOMIC_RELEASE);
    r->t0 = t0;
    r->t1 = t1;
    r->naddr = 0;
    for (; res && r->naddr < OBS_RESOLVE_ADDRS; res = res->ai_next) {
        struct obs_addr a;
        obs_addr_set(&a, res->ai_addr, res->ai_addrlen);
        if (a.family) {
            a.port = 0;
            r->addr[r->naddr++] = a;
        }
    }
    __atomic_store_n(&r->seq, n, __ATOMIC_RELEASE);
    OBS_COUNT(resolves, 1);
}

/* The newest unused resolution that produced this peer address, within a
 * minute: it is consumed, so it is attached to the connection that follows. */
static void obs_attach_resolution(struct obs_conn_fields *f, uint64_t t_connect)
{
    struct obs_addr want = f->peer;
    want.port = 0;
    uint64_t head = __atomic_load_n(&obs_resolve_head, __ATOMIC_ACQUIRE);
    for (uint64_t i = 0; i < OBS_RESOLVE_RING && i < head; i++) {
        struct obs_resolution *r = &obs_resolved[(head - i) % OBS_RESOLVE_RING];
        uint64_t seq = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE);
        if (seq == 0 || r->t1 > t_connect || t_connect - r->t1 > 60000000000ull)
            continue;
        for (uint32_t k = 0; k < r->naddr && k < OBS_RESOLVE_ADDRS; k++) {
            if (obs_addr_same(&r->addr[k], &want) &&
                __atomic_compare_exchange_n(&r->seq, &seq, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
                f->t_resolve_start = r->t0;
                f->t_resolve_end = r->t1;
                return;
            }
        }
    }
}

/* ---- the fd table ------------------------------------------------------ */

static void obs_fd_set(int fd, enum obs_fd_kind kind, void *rec)
{
    struct obs_fd *e = &obs_fds[fd];
    OBS_ST(e->rec, rec);
    OBS_ST(e->ep_count, 0);
    OBS_ST(e->ep_data, 0);
    OBS_ST(e->ep_fd, -1);
    __atomic_store_n(&e->kind, kind, __ATOMIC_RELEASE);
    obs_note_fd(fd);
}

void obs_on_socket(int fd, int domain, int type)
{
    if (obs_fds == NULL)
        return;
    obs_on_fresh_fd(fd);
    if (domain != AF_INET && domain != AF_INET6)
        return;
    int base = type & 0xf; /* strip SOCK_NONBLOCK | SOCK_CLOEXEC */
    if (base != SOCK_STREAM && base != SOCK_DGRAM)
        return;
    if ((unsigned)fd >= obs_fd_cap) {
        OBS_COUNT(fd_over_cap, 1);
        return;
    }
    if (!obs_log_ensure())
        return;
    obs_fd_set(fd, base == SOCK_STREAM ? OBS_FD_TCP : OBS_FD_UDP, NULL);
}

/* ---- TCP connections: the phase table ------------------------------------
 * Every write of a connection's phase timestamps happens in the functions
 * of this section, as this table says.  "Request" calls are sends for a
 * client and receives for an accepted (server-side) connection; "response"
 * calls the other way.  Entry and return are the interposed call's.
 *
 *  phase       call                                        sets                                   then
 *  ----------  ------------------------------------------  -------------------------------------  ----------
 *  (new)       connect() returns 0; accept() returns       t_connect, t_established               IDLE
 *  (new)       connect() EINPROGRESS (or EINTR)            t_connect, NONBLOCK                    CONNECTING
 *  (new)       connect() fails with e                      t_connect, connect_errno e, FAILED     FAILED
 *  CONNECTING  an event wait reports it writable or in     the kernel is asked (getpeername,
 *              error                                       which leaves SO_ERROR alone):
 *                                                            connected: t_established = return   IDLE
 *                                                            not: connect_errno -1, FAILED       FAILED
 *  CONNECTING  SO_ERROR read 0; connect() again 0/EISCONN  t_established                          IDLE
 *  CONNECTING  SO_ERROR e; connect() again e; a send or    connect_errno e, FAILED                FAILED
 *              recv fails with a connect error e
 *  CONNECTING  a send moves bytes / a recv returns bytes   t_established = send's entry / recv's  IDLE, then
 *                                                          return                                 as below
 *  CONNECTING  the last descriptor is closed and the       connect_errno -1, FAILED, GAVE_UP      (closed)
 *              kernel says it never connected
 *  FAILED, -1  SO_ERROR e; connect() again e; send/recv e  connect_errno e (the reason is known)  FAILED
 *  IDLE, RESP  a request call enters                       req_t0, pending (no record yet)        REQ
 *  REQ         that call moves nothing                     pending undone                         as before
 *  REQ         a request call returns n > 0                the exchange opens if pending          REQ
 *                                                          (t_req_first = req_t0); t_req_last
 *  REQ         a response call returns n > 0               the exchange opens if pending;         RESP
 *                                                          t_resp_first, t_resp_last
 *  RESP        a response call returns n > 0               t_resp_last                            RESP
 *  RESP        a request call that entered during REQ      t_req_last = t_resp_first, OVERLAP     RESP
 *              returns n > 0 (another thread received)
 *  IDLE        a response call returns n > 0 (a greeting)  an exchange without request times      RESP
 *  any         the event wait reports readable during REQ  the exchange's t_resp_ready            same
 *  any         the last descriptor is closed               t_close; exchange and connection final (closed)
 *  any         the process calls exit() with it open       t_close = the exit, EXIT               (closed)
 *
 * The connection's own t_req_first … t_resp_last are its first exchange's;
 * t_resp_end is the last response byte of any exchange.  Times never run
 * backwards within an exchange: an exchange starts no earlier than the
 * previous one's last response byte, its response no earlier than its
 * request, so no period is negative even when two threads' calls
 * interleave. */

#define CONN_FIELDS_SIZE sizeof(struct obs_conn_fields)

static struct obs_conn_slot *obs_conn_new(int fd, int side, const struct sockaddr *peer, socklen_t len,
                                          uint64_t t_connect)
{
    struct obs_conn_slot *c = obs_rec_alloc(OBS_REC_CONN);
    if (!c)
        return NULL;
    c->f.fd = fd;
    c->f.side = (uint32_t)side;
    c->f.t_connect = t_connect;
    obs_addr_set(&c->f.peer, peer, len);
    c->refs = 1;
    return c;
}

static void obs_conn_set_established(struct obs_conn_slot *c, uint64_t t)
{
    if (OBS_LD(c->phase) == OBS_PH_CONNECTING) {
        c->f.t_established = t;
        OBS_ST(c->phase, OBS_PH_IDLE);
    }
}

/* The connect failed with err (-1: its reason is not known yet). */
static void obs_conn_fail(struct obs_conn_slot *c, int err)
{
    c->f.connect_errno = err;
    c->h.flags |= OBS_RF_FAILED;
    OBS_ST(c->phase, OBS_PH_FAILED);
}

/* A connect's outcome named by the application's own question (SO_ERROR,
 * connect() again) or by a send or recv that failed: e, or 0 for success. */
static void obs_conn_outcome(struct obs_conn_slot *c, int e, uint64_t t)
{
    if (OBS_LD(c->phase) == OBS_PH_CONNECTING) {
        if (e == 0 || e == EISCONN)
            obs_conn_set_established(c, t);
        else if (e != EALREADY && e != EINPROGRESS && e != EINTR && e != EAGAIN)
            obs_conn_fail(c, e);
    } else if (OBS_LD(c->phase) == OBS_PH_FAILED && c->f.connect_errno == -1 && e > 0 && e != EALREADY &&
               e != EINPROGRESS && e != EINTR && e != EAGAIN && e != EISCONN) {
        c->f.connect_errno = e;
    }
}

/* The connect finished (an event wait said so): ask the kernel whether it
 * is connected.  getpeername() answers without consuming the error the
 * application is about to read with getsockopt(SO_ERROR). */
static int obs_kernel_connected(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int saved = errno;
    int ok = getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
    int why = errno;
    errno = saved;
    return ok ? 1 : why == ENOTCONN ? 0 : -1;
}

static void obs_conn_finished_connecting(struct obs_conn_slot *c, int fd, uint64_t t)
{
    int connected = obs_kernel_connected(fd);
    if (connected == 1)
        obs_conn_set_established(c, t);
    else if (connected == 0)
        obs_conn_fail(c, -1);
}

/* A request whose last send returned after its response began (another
 * thread received it): the request ends where the response begins. */
static int obs_put_in_order(uint64_t *req_last, uint64_t resp_first)
{
    if (resp_first && OBS_LD(*req_last) > resp_first) {
        OBS_ST(*req_last, resp_first);
        return 1;
    }
    return 0;
}

static void obs_xchg_close(struct obs_xchg_slot *x)
{
    if (!x)
        return;
    uint64_t first = OBS_LD(x->f.t_resp_first);
    if (obs_put_in_order(&x->f.t_req_last, first) || (first && OBS_LD(x->f.t_req_last) == first))
        __atomic_fetch_or(&x->h.flags, OBS_RF_OVERLAP, __ATOMIC_RELAXED);
    obs_rec_finalize(x, sizeof x->f);
}

/* A new exchange record whose request began at t_req (0: a response without
 * a request), replacing the current one. */
static struct obs_xchg_slot *obs_xchg_open(struct obs_conn_slot *c, uint64_t t_req)
{
    struct obs_xchg_slot *prev = OBS_LD(c->xchg);
    if (prev && t_req && t_req < prev->f.t_resp_last)
        t_req = prev->f.t_resp_last; /* another thread's clock, a hair behind */
    obs_xchg_close(prev);
    uint32_t seq = ++c->f.exchanges;
    struct obs_xchg_slot *x = obs_rec_alloc(OBS_REC_XCHG);
    if (x) {
        x->f.conn = (uint64_t)((char *)c - (char *)obs_log_header());
        x->f.seq = seq;
        x->f.t_req_first = t_req;
        obs_rec_publish(x, 0);
    }
    __atomic_store_n(&c->xchg, x, __ATOMIC_RELEASE);
    __atomic_store_n(&c->pending, 0, __ATOMIC_RELEASE);
    if (seq == 1)
        c->f.t_req_first = t_req;
    return x;
}

/* The exchange a request call began, opened by whichever of the threads
 * moving bytes on the connection claims it first (pending 1 -> 2); another
 * waits the few stores it takes (a log that must grow first: a little
 * longer) until the new record is in place (pending 0). */
static struct obs_xchg_slot *obs_xchg_open_pending(struct obs_conn_slot *c)
{
    uint32_t one = 1;
    if (__atomic_compare_exchange_n(&c->pending, &one, 2, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return obs_xchg_open(c, OBS_LD(c->req_t0)); /* clears pending */
    for (int i = 0; i < 1000000 && __atomic_load_n(&c->pending, __ATOMIC_ACQUIRE) == 2; i++)
        obs_cpu_relax();
    return __atomic_load_n(&c->xchg, __ATOMIC_ACQUIRE);
}

/* A request call enters on a connection not sending a request: the
 * exchange begins here, though its record is made only once bytes move
 * (a call that moves nothing undoes it).  Returns the entry time. */
uint64_t obs_on_request_entry(struct obs_conn_slot *c)
{
    uint64_t t0 = obs_now();
    uint32_t ph = __atomic_load_n(&c->phase, __ATOMIC_RELAXED);
    if (ph != OBS_PH_IDLE && ph != OBS_PH_RESP)
        return t0; /* connecting (its first send), or failed */
    if (!obs_begin())
        return t0; /* a handler interrupted our bookkeeping: its return opens the exchange */
    if (OBS_LD(c->phase) == OBS_PH_IDLE || OBS_LD(c->phase) == OBS_PH_RESP) {
        OBS_ST(c->req_t0, t0);
        OBS_ST(c->prev_phase, OBS_LD(c->phase));
        OBS_ST(c->pending, 1);
        __atomic_store_n(&c->phase, OBS_PH_REQ, __ATOMIC_RELAXED);
    }
    obs_end();
    return t0;
}

/* Bytes moved in the request direction: tok from the call's entry (see
 * obs_entry_time), return time t1.  With another thread receiving, the
 * response may have begun while this call was in the kernel: the times
 * both threads write are atomic, and the exchange is put in order when it
 * is closed (obs_xchg_close). */
static void obs_conn_request(struct obs_conn_slot *c, size_t n, uint64_t tok, uint64_t t1)
{
    struct obs_xchg_slot *x = __atomic_load_n(&c->xchg, __ATOMIC_ACQUIRE);
    int mine = tok == OBS_TOK_INREQ || (tok && tok == OBS_LD(c->req_t0));
    if (OBS_LD(c->pending)) {
        x = obs_xchg_open_pending(c);
    } else if (!(OBS_LD(c->phase) == OBS_PH_REQ || (OBS_LD(c->phase) == OBS_PH_RESP && mine && x))) {
        x = obs_xchg_open(c, tok > OBS_TOK_INREQ ? tok : t1); /* its entry was not seen */
        OBS_ST(c->phase, OBS_PH_REQ);
    }
    if (!x)
        return;
    uint64_t last = t1, first = OBS_LD(x->f.t_resp_first);
    if (first && last > first)
        last = first;
    OBS_ST(x->f.t_req_last, last);
    x->f.bytes_sent += n;
    if (x->f.seq == 1)
        OBS_ST(c->f.t_req_last, last);
}

/* Bytes moved in the response direction, returned at t1. */
static void obs_conn_response(struct obs_conn_slot *c, size_t n, uint64_t t1)
{
    struct obs_xchg_slot *x = __atomic_load_n(&c->xchg, __ATOMIC_ACQUIRE);
    if (OBS_LD(c->pending)) /* its request call is still in the kernel (another thread's) */
        x = obs_xchg_open_pending(c);
    else if (OBS_LD(c->phase) != OBS_PH_REQ && OBS_LD(c->phase) != OBS_PH_RESP)
        x = obs_xchg_open(c, 0); /* a server's greeting: no request before it */
    if (OBS_LD(c->phase) != OBS_PH_RESP) {
        OBS_ST(c->phase, OBS_PH_RESP);
        if (x)
            OBS_ST(x->f.t_resp_first, t1);
    }
    if (x) {
        x->f.t_resp_last = t1;
        x->f.bytes_received += n;
        if (x->f.seq == 1) {
            OBS_ST(c->f.t_resp_first, OBS_LD(x->f.t_resp_first));
            c->f.t_resp_last = t1;
        }
    }
    c->f.t_resp_end = t1;
}

void obs_on_connect(struct obs_fd *e, int fd, const struct sockaddr *sa, socklen_t len, int ret,
                    int err, uint64_t t0, uint64_t t1)
{
    if (OBS_LD(e->kind) == OBS_FD_UDP) {
        /* a record made later learns the peer from getpeername() */
        struct obs_udp_slot *u = OBS_LD(e->rec);
        if (ret == 0 && u)
            obs_addr_set(&u->f.peer, sa, len);
        return;
    }
    if (OBS_LD(e->kind) != OBS_FD_TCP)
        return;
    struct obs_conn_slot *c = OBS_LD(e->rec);
    if (c) {
        obs_apply_or_queue(&(struct obs_later_call){ .what = LATER_CONNECT_AGAIN, .rec = c, .a = ret, .b = err,
                                                     .t1 = t1 });
        return;
    }
    /* an address the kernel cannot take (too short for its family) was a
     * bad argument, not an attempt: no record */
    if (!sa || !((sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) ||
                 (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))))
        return;
    c = obs_conn_new(fd, 0, sa, len, t0);
    if (!c)
        return;
    uint32_t flags = 0;
    OBS_ST(c->phase, OBS_PH_CONNECTING);
    if (ret == 0)
        obs_conn_set_established(c, t1);
    else if (err == EINPROGRESS || err == EINTR) /* EINTR: a blocking connect goes on in the kernel */
        flags |= err == EINPROGRESS ? OBS_RF_NONBLOCK : 0;
    else
        obs_conn_fail(c, err);
    if (OBS_LD(c->phase) != OBS_PH_FAILED)
        obs_local_addr(fd, &c->f.local);
    obs_attach_resolution(&c->f, t0);
    obs_rec_publish(c, flags | c->h.flags);
    __atomic_store_n(&e->rec, c, __ATOMIC_RELEASE);
}

void obs_on_accept(int fd, const struct sockaddr *sa, socklen_t salen, uint64_t t1)
{
    if (obs_fds == NULL)
        return;
    obs_on_fresh_fd(fd);
    if ((unsigned)fd >= obs_fd_cap) {
        OBS_COUNT(fd_over_cap, 1);
        return;
    }
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    if (!sa || salen < sizeof(struct sockaddr_in) ||
        (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) {
        int got;
        OBS_KEEP_ERRNO(got = getpeername(fd, (struct sockaddr *)&peer, &len));
        if (got != 0)
            return;
        sa = (struct sockaddr *)&peer;
        salen = len;
    }
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
        return;
    struct obs_conn_slot *c = obs_conn_new(fd, 1, sa, salen, t1);
    if (!c)
        return;
    OBS_ST(c->phase, OBS_PH_CONNECTING);
    obs_conn_set_established(c, t1);
    obs_local_addr(fd, &c->f.local);
    obs_rec_publish(c, 0);
    obs_fd_set(fd, OBS_FD_TCP, c);
}

/* ---- datagram sockets --------------------------------------------------- */

#define UDP_FIELDS_SIZE sizeof(struct obs_udp_fields)
#define DGRAM_FIELDS_SIZE sizeof(struct obs_dgram_fields)

static struct obs_udp_slot *obs_udp_get(struct obs_fd *e, int fd, uint64_t t1)
{
    struct obs_udp_slot *u = OBS_LD(e->rec);
    if (u)
        return u;
    u = obs_rec_alloc(OBS_REC_UDP);
    if (!u)
        return NULL;
    u->f.fd = fd;
    u->f.t_first = t1;
    u->refs = 1;
    obs_local_addr(fd, &u->f.local);
    obs_peer_addr(fd, &u->f.peer);
    obs_rec_publish(u, 0);
    __atomic_store_n(&e->rec, u, __ATOMIC_RELEASE);
    return u;
}

static void obs_udp_drop_pending(struct obs_udp_slot *u, uint32_t i)
{
    obs_rec_finalize(u->pending[i].rec, DGRAM_FIELDS_SIZE);
    u->pending[i] = u->pending[--u->npending];
}

/* A datagram sent at t_send: its send's entry (the return for sendmmsg's
 * later messages, whose own entries are not seen).  On loopback the answer
 * can be on its way before the send returns. */
static void obs_udp_sent(struct obs_udp_slot *u, const struct obs_addr *peer, size_t n, uint64_t t_send)
{
    u->f.dgrams_sent++;
    u->f.bytes_sent += n;
    for (uint32_t i = 0; i < u->npending; i++) {
        if (obs_addr_same(&u->pending[i].peer, peer)) {
            u->f.unanswered++;
            obs_udp_drop_pending(u, i);
            break;
        }
    }
    if (u->npending == OBS_UDP_PENDING) {
        uint32_t oldest = 0;
        for (uint32_t i = 1; i < u->npending; i++)
            if (u->pending[i].age < u->pending[oldest].age)
                oldest = i;
        u->f.unanswered++;
        obs_udp_drop_pending(u, oldest);
    }
    struct obs_dgram_slot *d = obs_rec_alloc(OBS_REC_DGRAM);
    if (!d)
        return;
    d->f.sock = (uint64_t)((char *)u - (char *)obs_log_header());
    d->f.t_send = t_send;
    d->f.bytes_sent = n;
    d->f.peer = *peer;
    obs_rec_publish(d, 0);
    uint32_t k = u->npending++;
    u->pending[k].peer = *peer;
    u->pending[k].age = (uint32_t)u->f.dgrams_sent;
    u->pending[k].rec = d;
}

static void obs_udp_received(struct obs_udp_slot *u, const struct obs_addr *from, size_t n, uint64_t t1)
{
    u->f.dgrams_received++;
    u->f.bytes_received += n;
    int guessed = 0;
    int match = -1;
    if (from) {
        for (uint32_t i = 0; i < u->npending; i++)
            if (obs_addr_same(&u->pending[i].peer, from))
                match = (int)i;
    } else if (u->npending) {
        /* unconnected socket, source not asked for (recv, read): the oldest
         * datagram still waiting is the likeliest one answered, and the
         * record says it was a guess.  Waiting for a single candidate would
         * leave every answer after a burst of sends unmatched. */
        match = 0;
        for (uint32_t i = 1; i < u->npending; i++)
            if (u->pending[i].age < u->pending[match].age)
                match = (int)i;
        guessed = 1;
    }
    if (match < 0) {
        u->f.unmatched++;
        return;
    }
    struct obs_dgram_slot *d = u->pending[match].rec;
    d->f.t_recv = t1;
    d->f.bytes_received = n;
    if (guessed)
        d->h.flags |= OBS_RF_GUESSED;
    u->f.answered++;
    obs_udp_drop_pending(u, (uint32_t)match);
}

static void obs_udp_close(struct obs_udp_slot *u, uint64_t t_close)
{
    while (u->npending) {
        u->f.unanswered++;
        obs_udp_drop_pending(u, u->npending - 1);
    }
    u->f.t_close = t_close;
    obs_rec_finalize(u, UDP_FIELDS_SIZE);
}

/* ---- data --------------------------------------------------------------- */

static void obs_conn_out(struct obs_conn_slot *c, size_t n, uint64_t tok, uint64_t t1)
{
    if (OBS_LD(c->phase) == OBS_PH_CONNECTING)
        obs_conn_set_established(c, tok > OBS_TOK_INREQ ? tok : t1);
    OBS_ADD(c->f.bytes_sent, n);
    OBS_ADD(c->f.send_calls, 1);
    if (c->f.side == 0)
        obs_conn_request(c, n, tok, t1);
    else
        obs_conn_response(c, n, t1);
}

static void obs_conn_in(struct obs_conn_slot *c, size_t n, uint64_t tok, uint64_t t1)
{
    if (OBS_LD(c->phase) == OBS_PH_CONNECTING)
        obs_conn_set_established(c, t1);
    OBS_ADD(c->f.bytes_received, n);
    OBS_ADD(c->f.recv_calls, 1);
    if (c->f.side == 0)
        obs_conn_response(c, n, t1);
    else
        obs_conn_request(c, n, tok, t1);
}

/* Bytes moved on a TCP connection: out (sent) or in (received). */
static void obs_conn_moved(int out, struct obs_conn_slot *c, size_t n, uint64_t tok, uint64_t t1)
{
    if (OBS_UNLIKELY(!obs_begin())) {
        obs_later(&(struct obs_later_call){ .what = out ? LATER_TCP_OUT : LATER_TCP_IN, .rec = c, .n = n,
                                            .t0 = tok, .t1 = t1 });
        return;
    }
    if (out)
        obs_conn_out(c, n, tok, t1);
    else
        obs_conn_in(c, n, tok, t1);
    obs_end();
}

/* A send or recv that moved nothing: a request call that began an exchange
 * undoes it, and a failure may be a connect's outcome (a program that just
 * sends and gets ECONNREFUSED).  err is the call's errno (0 for EOF). */
static void obs_conn_nothing_moved(struct obs_conn_slot *c, int out, uint64_t tok, int err, uint64_t t1)
{
    uint32_t one = 1;
    if (tok > OBS_TOK_INREQ && tok == OBS_LD(c->req_t0) && (out ^ (int)c->f.side) &&
        __atomic_compare_exchange_n(&c->pending, &one, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        OBS_ST(c->phase, OBS_LD(c->prev_phase));
    if (err && err != EAGAIN && err != EINTR)
        obs_conn_outcome(c, err, t1);
}

void obs_on_nothing_moved(struct obs_fd *e, int out, uint64_t tok, int err)
{
    struct obs_conn_slot *c = OBS_LD(e->rec);
    if (OBS_LD(e->kind) != OBS_FD_TCP || !c)
        return;
    if (tok <= OBS_TOK_INREQ && OBS_LD(c->phase) != OBS_PH_CONNECTING && OBS_LD(c->phase) != OBS_PH_FAILED)
        return; /* the common case: a non-blocking read found nothing */
    int saved = errno;
    obs_apply_or_queue(&(struct obs_later_call){ .what = LATER_NOTHING, .rec = c, .a = out, .b = err, .t0 = tok,
                                                 .t1 = obs_now() });
    errno = saved;
}

void obs_on_out(struct obs_fd *e, int fd, size_t n, uint64_t t0, uint64_t t1, const struct sockaddr *to,
                socklen_t tolen)
{
    if (OBS_LD(e->kind) == OBS_FD_TCP) {
        struct obs_conn_slot *c = OBS_LD(e->rec);
        if (c)
            obs_conn_moved(1, c, n, t0, t1);
    } else if (OBS_LD(e->kind) == OBS_FD_UDP) {
        struct obs_udp_slot *u = obs_udp_get(e, fd, t1);
        if (!u)
            return;
        struct obs_addr peer;
        if (to && tolen)
            obs_addr_set(&peer, to, tolen);
        else
            peer = u->f.peer;
        obs_apply_or_queue(&(struct obs_later_call){ .what = LATER_UDP_OUT, .rec = u, .n = n,
                                                     .t1 = t0 ? t0 : t1, .addr = peer });
    }
}

void obs_on_in(struct obs_fd *e, int fd, size_t n, uint64_t t0, uint64_t t1, const struct sockaddr *from,
               socklen_t fromlen)
{
    if (OBS_LD(e->kind) == OBS_FD_TCP) {
        struct obs_conn_slot *c = OBS_LD(e->rec);
        if (c)
            obs_conn_moved(0, c, n, t0, t1);
    } else if (OBS_LD(e->kind) == OBS_FD_UDP) {
        struct obs_udp_slot *u = obs_udp_get(e, fd, t1);
        if (!u)
            return;
        struct obs_addr src = { 0 };
        if (from && fromlen)
            obs_addr_set(&src, from, fromlen);
        else
            src = u->f.peer; /* a connected socket hears only from its peer */
        obs_apply_or_queue(&(struct obs_later_call){ .what = LATER_UDP_IN, .rec = u, .n = n, .t1 = t1,
                                                     .has_addr = src.family != 0, .addr = src });
    }
}

/* An event wait reported this connection ready at t1. */
static void obs_conn_ready(struct obs_conn_slot *c, int fd, int readable, int writable, int error, uint64_t t1)
{
    if (OBS_LD(c->phase) == OBS_PH_CONNECTING) {
        /* writable (or in error) means the connect finished, not that it
         * succeeded: a refused connect is writable too */
        if (writable || error)
            obs_conn_finished_connecting(c, fd, t1);
        return;
    }
    if (readable && c->f.side == 0 && OBS_LD(c->phase) == OBS_PH_REQ) {
        struct obs_xchg_slot *x = OBS_LD(c->xchg);
        if (x && !OBS_LD(c->pending) && x->f.t_resp_ready == 0) {
            x->f.t_resp_ready = t1;
            if (x->f.seq == 1)
                c->f.t_resp_ready = t1;
        }
    }
}

void obs_on_ready(struct obs_fd *e, int fd, int readable, int writable, int error, uint64_t t1)
{
    if (OBS_LD(e->kind) != OBS_FD_TCP)
        return;
    struct obs_conn_slot *c = OBS_LD(e->rec);
    if (!c)
        return;
    obs_apply_or_queue(&(struct obs_later_call){ .what = LATER_READY, .rec = c, .a = fd,
                                                 .b = (readable != 0) | (writable != 0) << 1 | (error != 0) << 2,
                                                 .t1 = t1 });
}

void obs_on_sockopt_error(struct obs_fd *e, int value, uint64_t t1)
{
    struct obs_conn_slot *c = OBS_LD(e->rec);
    if (OBS_LD(e->kind) != OBS_FD_TCP || !c)
        return;
    obs_apply_or_queue(&(struct obs_later_call){ .what = LATER_SOCKOPT, .rec = c, .a = value, .t1 = t1 });
}

static void obs_conn_shutdown(struct obs_conn_slot *c, uint64_t t0)
{
    if (c->f.t_shutdown == 0)
        c->f.t_shutdown = t0;
}

void obs_on_shutdown(struct obs_fd *e, uint64_t t0)
{
    struct obs_conn_slot *c = OBS_LD(e->rec);
    if (OBS_LD(e->kind) != OBS_FD_TCP || !c)
        return;
    obs_apply_or_queue(&(struct obs_later_call){ .what = LATER_SHUTDOWN, .rec = c, .t0 = t0 });
}

/* ---- descriptors -------------------------------------------------------- */

/* How a record's last descriptor went. */
enum obs_gone { GONE_CLOSED, GONE_UNSEEN, GONE_EXIT };

/* One descriptor fewer refers to rec: the last one ends the record.  fd is
 * still open (the close has not happened yet) unless the descriptor went
 * unseen. */
static void obs_release_now(enum obs_fd_kind kind, void *rec, int fd, enum obs_gone how, uint64_t t_close)
{
    if (kind == OBS_FD_TCP) {
        struct obs_conn_slot *c = rec;
        if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
            return;
        if (OBS_LD(c->phase) == OBS_PH_CONNECTING && how != GONE_UNSEEN && obs_kernel_connected(fd) == 0) {
            obs_conn_fail(c, -1); /* the program gave up waiting */
            c->h.flags |= OBS_RF_GAVE_UP;
        }
        if (how == GONE_EXIT)
            c->h.flags |= OBS_RF_EXIT;
        c->f.t_close = t_close;
        obs_put_in_order(&c->f.t_req_last, c->f.t_resp_first);
        obs_xchg_close(OBS_LD(c->xchg));
        OBS_ST(c->xchg, NULL);
        obs_rec_finalize(c, CONN_FIELDS_SIZE);
    } else if (kind == OBS_FD_UDP) {
        struct obs_udp_slot *u = rec;
        if (__atomic_sub_fetch(&u->refs, 1, __ATOMIC_ACQ_REL) != 0)
            return;
        if (how == GONE_EXIT)
            u->h.flags |= OBS_RF_EXIT;
        obs_udp_close(u, t_close);
    }
}

static void obs_release(enum obs_fd_kind kind, void *rec, int fd, enum obs_gone how, uint64_t t_close)
{
    if (!rec)
        return;
    obs_apply_or_queue(&(struct obs_later_call){ .what = LATER_RELEASE, .kind = (uint8_t)kind, .rec = rec,
                                                 .a = fd, .b = how, .t1 = t_close });
}

/* The descriptor is gone (closed by the application, or replaced).  The
 * entry is cleared before the real close so that a new socket that gets the
 * same number in another thread is never confused with this one. */
static void obs_detach_how(int fd, enum obs_gone how, uint64_t t_close)
{
    if ((unsigned)fd >= obs_fd_cap || obs_fds == NULL)
        return;
    struct obs_fd *e = &obs_fds[fd];
    enum obs_fd_kind kind = __atomic_exchange_n(&e->kind, OBS_FD_NONE, __ATOMIC_ACQ_REL);
    if (kind == OBS_FD_NONE)
        return;
    void *rec = __atomic_exchange_n(&e->rec, NULL, __ATOMIC_ACQ_REL);
    if (OBS_LD(e->ep_fd) >= 0 && (unsigned)OBS_LD(e->ep_fd) < obs_fd_cap) {
        struct obs_fd *ep = &obs_fds[OBS_LD(e->ep_fd)];
        if (__atomic_load_n(&ep->kind, __ATOMIC_ACQUIRE) == OBS_FD_EPOLL && OBS_LD(ep->ep_count) > 0)
            __atomic_fetch_sub(&ep->ep_count, 1, __ATOMIC_RELAXED);
    }
    obs_release(kind, rec, fd, how, t_close);
}

void obs_detach(int fd, uint64_t t_close)
{
    obs_detach_how(fd, GONE_CLOSED, t_close);
}

/* A descriptor number came back from a call that creates descriptors while
 * our table still has it: the old one was closed behind our back (glibc's
 * internal close, fclose of an fdopen'd socket ...).  Its record ends without
 * a close time. */
void obs_on_fresh_fd(int fd)
{
    if ((unsigned)fd < obs_fd_cap && obs_fds && __atomic_load_n(&obs_fds[fd].kind, __ATOMIC_ACQUIRE))
        obs_detach_how(fd, GONE_UNSEEN, 0);
}

/* exit() (or a return from main): the kernel will close what is still open,
 * unseen by us, so each tracked socket is closed out now, at the exit's
 * time and marked so.  _exit(), a fatal signal and SIGKILL skip this: their
 * records stay open, as the process left them. */
void obs_close_all_at_exit(uint64_t t_exit)
{
    int hi = __atomic_load_n(&obs_fd_hiwater, __ATOMIC_RELAXED);
    for (int fd = 0; fd <= hi && (unsigned)fd < obs_fd_cap; fd++) {
        uint32_t kind = __atomic_load_n(&obs_fds[fd].kind, __ATOMIC_ACQUIRE);
        if (kind == OBS_FD_TCP || kind == OBS_FD_UDP)
            obs_detach_how(fd, GONE_EXIT, t_exit);
    }
}

void obs_on_dup(int oldfd, int newfd, uint64_t t0)
{
    if (obs_fds == NULL || (unsigned)newfd >= obs_fd_cap)
        return;
    obs_detach(newfd, t0); /* dup2/dup3 onto a tracked socket closes it */
    struct obs_fd *o = obs_lookup(oldfd);
    if (!o || (OBS_LD(o->kind) != OBS_FD_TCP && OBS_LD(o->kind) != OBS_FD_UDP))
        return;
    void *rec = __atomic_load_n(&o->rec, __ATOMIC_ACQUIRE);
    if (rec) {
        struct obs_rec_hdr *h = rec;
        __atomic_fetch_add(OBS_LD(o->kind) == OBS_FD_TCP ? &((struct obs_conn_slot *)rec)->refs
                                                 : &((struct obs_udp_slot *)rec)->refs,
                           1, __ATOMIC_ACQ_REL);
        __atomic_fetch_or(&h->flags, OBS_RF_DUPED, __ATOMIC_RELAXED);
    }
    obs_fd_set(newfd, (enum obs_fd_kind)OBS_LD(o->kind), rec);
}

/* ---- event waits -------------------------------------------------------- */

/* A new epoll instance: its registrations are counted (obs_on_epoll_ctl). */
void obs_on_epoll_created(int fd)
{
    obs_on_fresh_fd(fd);
    if ((unsigned)fd >= obs_fd_cap)
        return;
    struct obs_fd *e = &obs_fds[fd];
    OBS_ST(e->rec, NULL);
    OBS_ST(e->ep_count, 0);
    OBS_ST(e->ep_fd, -1);
    __atomic_store_n(&e->kind, OBS_FD_EPOLL, __ATOMIC_RELEASE);
    obs_note_fd(fd);
}

void obs_on_epoll_ctl(int epfd, int op, int fd, const struct epoll_event *ev)
{
    struct obs_fd *ep = obs_lookup(epfd);
    struct obs_fd *e = obs_lookup(fd);
    if (ep && OBS_LD(ep->kind) == OBS_FD_EPOLL) {
        if (op == EPOLL_CTL_ADD)
            __atomic_fetch_add(&ep->ep_count, 1, __ATOMIC_RELAXED);
        else if (op == EPOLL_CTL_DEL && OBS_LD(ep->ep_count) > 0)
            __atomic_fetch_sub(&ep->ep_count, 1, __ATOMIC_RELAXED);
    }
    if (!e || (OBS_LD(e->kind) != OBS_FD_TCP && OBS_LD(e->kind) != OBS_FD_UDP))
        return;
    if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && ev) {
        OBS_ST(e->ep_data, ev->data.u64);
        OBS_ST(e->ep_fd, epfd);
    } else if (op == EPOLL_CTL_DEL) {
        OBS_ST(e->ep_fd, -1);
    }
}

void obs_on_wait(enum obs_mech mech, uint32_t interest, int ready, int err, uint64_t t0, uint64_t t1)
{
    struct obs_wait_agg *a = &obs_wait_aggs()[mech];
    uint64_t blocked = t1 - t0;
    __atomic_fetch_add(&a->calls, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&a->interest_sum, interest, __ATOMIC_RELAXED);
    __atomic_fetch_add(&a->blocked_ns, blocked, __ATOMIC_RELAXED);
    if (ready > 0)
        __atomic_fetch_add(&a->ready_sum, (uint64_t)ready, __ATOMIC_RELAXED);
    else if (ready < 0)
        __atomic_fetch_add(&a->errors, 1, __ATOMIC_RELAXED);
    uint64_t max = __atomic_load_n(&a->blocked_max_ns, __ATOMIC_RELAXED);
    while (blocked > max && !__atomic_compare_exchange_n(&a->blocked_max_ns, &max, blocked, 1,
                                                         __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    if (obs_wait_mode_all() && obs_log_header()) {
        struct obs_wait_slot *w = obs_rec_alloc(OBS_REC_WAIT);
        if (!w)
            return;
        w->f.t_enter = t0;
        w->f.t_exit = t1;
        w->f.mech = mech;
        w->f.interest = interest;
        w->f.ready = ready;
        w->f.err = ready < 0 ? err : 0;
        obs_rec_publish(w, 0);
        obs_rec_finalize(w, sizeof w->f);
    }
}

/* ---- applying what handlers queued (see obs_begin) ------------------- */

static void obs_apply(const struct obs_later_call *q)
{
    switch ((enum obs_later_what)q->what) {
    case LATER_TCP_OUT: obs_conn_out(q->rec, q->n, q->t0, q->t1); break;
    case LATER_TCP_IN: obs_conn_in(q->rec, q->n, q->t0, q->t1); break;
    case LATER_UDP_OUT: obs_udp_sent(q->rec, &q->addr, q->n, q->t1); break;
    case LATER_UDP_IN: obs_udp_received(q->rec, q->has_addr ? &q->addr : NULL, q->n, q->t1); break;
    case LATER_READY: obs_conn_ready(q->rec, q->a, q->b & 1, q->b & 2, q->b & 4, q->t1); break;
    case LATER_SOCKOPT: obs_conn_outcome(q->rec, q->a, q->t1); break; /* SO_ERROR read */
    case LATER_SHUTDOWN: obs_conn_shutdown(q->rec, q->t0); break;
    case LATER_CONNECT_AGAIN: obs_conn_outcome(q->rec, q->a == 0 ? 0 : q->b, q->t1); break;
    case LATER_RELEASE: obs_release_now((enum obs_fd_kind)q->kind, q->rec, q->a, (enum obs_gone)q->b, q->t1); break;
    case LATER_NOTHING: obs_conn_nothing_moved(q->rec, q->a, q->t0, q->b, q->t1); break;
    }
}

/* Makes the change a call means now, or queues it if it interrupted our own
 * bookkeeping.  (The data path, obs_conn_moved, does the same by hand.) */
static void obs_apply_or_queue(const struct obs_later_call *call)
{
    if (obs_begin()) {
        obs_apply(call);
        obs_end();
    } else {
        obs_later(call);
    }
}

/* Called with `inside` set, so what handlers queue meanwhile waits its turn. */
static __attribute__((noinline, cold)) void obs_drain(void)
{
    while (obs_tls_later.head != __atomic_load_n(&obs_tls_later.tail, __ATOMIC_RELAXED)) {
        struct obs_later_call *q = &obs_tls_later.q[obs_tls_later.head & (OBS_LATER_SLOTS - 1)];
        if (q->written)
            obs_apply(q);
        else
            OBS_COUNT(dropped, 1); /* its handler never finished queuing it */
        q->written = 0;
        OBS_SIGNAL_FENCE();
        __atomic_store_n(&obs_tls_later.head, obs_tls_later.head + 1, __ATOMIC_RELAXED);
    }
}

/* A handler that left by siglongjmp() never returns to what it interrupted:
 * the bookkeeping applies what was queued and lets calls in again.  (No
 * handler runs inside the log's slow paths: they block signals.) */
void obs_on_longjmp(void)
{
    if (!obs_tls_later.inside)
        return;
    obs_drain();
    obs_tls_later.inside = 0;
}

/* The child of a fork() run from a handler inherits this thread's state;
 * what was queued belongs to the parent's records. */
void obs_later_forget(void)
{
    obs_tls_later.inside = 0;
    obs_tls_later.head = obs_tls_later.tail;
}

/* ---- fork: the child's inherited sockets get records in its own log ---- */

void obs_fork_child(void)
{
    int hi = obs_fd_hiwater;
    for (int fd = 0; fd <= hi && (unsigned)fd < obs_fd_cap; fd++) {
        struct obs_fd *e = &obs_fds[fd];
        if (OBS_LD(e->kind) != OBS_FD_TCP && OBS_LD(e->kind) != OBS_FD_UDP)
            continue;
        void *old = OBS_LD(e->rec);
        OBS_ST(e->rec, NULL);
        if (!old)
            continue;
        if (OBS_LD(e->kind) == OBS_FD_TCP) {
            const struct obs_conn_slot *o = old;
            struct obs_conn_slot *c = obs_rec_alloc(OBS_REC_CONN);
            if (!c)
                continue;
            c->f.fd = fd;
            c->f.side = o->f.side;
            c->f.local = o->f.local;
            c->f.peer = o->f.peer;
            c->f.t_established = o->f.t_established;
            c->refs = 1;
            c->phase = o->phase == OBS_PH_CONNECTING ? OBS_PH_CONNECTING : OBS_PH_IDLE;
            obs_rec_publish(c, OBS_RF_INHERITED);
            OBS_ST(e->rec, c);
        } else {
            const struct obs_udp_slot *o = old;
            struct obs_udp_slot *u = obs_rec_alloc(OBS_REC_UDP);
            if (!u)
                continue;
            u->f.fd = fd;
            u->f.local = o->f.local;
            u->f.peer = o->f.peer;
            u->refs = 1;
            obs_rec_publish(u, OBS_RF_INHERITED);
            OBS_ST(e->rec, u);
        }
    }
}
