/* obs_clock.c — CLOCK_MONOTONIC nanoseconds at the price of a TSC read.
 *
 * A vDSO clock_gettime() costs about 23 ns here, rdtsc about 10 ns, and a
 * tracked call needs one or two timestamps: the difference is a third of
 * the library's cost per call.  So, where the kernel itself keeps time with
 * an invariant TSC (clocksource tsc, or kvm-clock in a KVM guest), we
 * extrapolate CLOCK_MONOTONIC from the TSC:
 *
 *   ns = anchor_ns + (tsc - anchor_tsc) * mult >> 32
 *
 * Each thread re-anchors on a real clock_gettime() every 50 ms, so NTP's
 * slewing and any rate error can move a timestamp by well under a
 * microsecond; a thread's timestamps never go backwards across a re-anchor.
 * mult is calibrated against CLOCK_MONOTONIC over the process's whole life
 * (it starts after 50 ms of baseline; until then every timestamp is a real
 * clock_gettime()).  OBSERVE_CLOCK=monotonic turns all of this off.
 */
#include "obs.h"

#if OBS_HAVE_TSC
#include <cpuid.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

OBS_HIDDEN int obs_clock_tsc;            /* 1 once the TSC path is calibrated */
OBS_HIDDEN uint64_t obs_clock_mult;      /* ns per tick, << 32 */
OBS_HIDDEN uint64_t obs_clock_window;    /* ticks between re-anchors */
OBS_HIDDEN __thread struct obs_clock_anchor obs_tls_clock __attribute__((tls_model("initial-exec")));

/* UNDECIDED until obs_clock_init; CALIBRATING during the baseline; STARTING
 * while the one thread that won the race past it decides; then TSC or OFF. */
enum { CLOCK_UNDECIDED, CLOCK_CALIBRATING, CLOCK_STARTING, CLOCK_TSC, CLOCK_OFF };
static int clock_mode = CLOCK_UNDECIDED;
static uint64_t base_tsc, base_ns;      /* the process-long baseline, set before any thread */
static uint64_t clock_since;            /* when the TSC path began, or 0 */

/* Where the time the TSC path began is published, once someone (the log)
 * gives a place.  Both sides store, then load the other's word, in one
 * total order: whichever comes second publishes. */
static uint64_t *since_slot;

static void publish_since(void)
{
    uint64_t *slot = __atomic_load_n(&since_slot, __ATOMIC_SEQ_CST);
    uint64_t since = __atomic_load_n(&clock_since, __ATOMIC_SEQ_CST);
    if (slot && since)
        __atomic_store_n(slot, since, __ATOMIC_RELAXED);
}

void obs_clock_publish_to(uint64_t *since_ns)
{
    __atomic_store_n(&since_slot, since_ns, __ATOMIC_SEQ_CST);
    publish_since();
}

#define BASELINE_NS 50000000ull /* 50 ms */

static uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A TSC reading and a clock reading taken at the same instant, as nearly as
 * we can: the clock read is bracketed by two TSC reads and the narrowest of
 * a few tries wins.  A pair torn by preemption or a first-call page fault
 * (microseconds) would otherwise skew the rate measured from it, and the
 * extrapolation would carry that skew across a whole window. */
#define PAIR_TRIES 4
#define PAIR_TIGHT_TICKS 1000 /* well under a microsecond at any TSC rate */

static void clock_pair(uint64_t *tsc, uint64_t *ns)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < PAIR_TRIES && best > PAIR_TIGHT_TICKS; i++) {
        uint64_t t1 = obs_tsc(), n = clock_ns(), t2 = obs_tsc();
        if (t2 < t1 || t2 - t1 >= best)
            continue;
        best = t2 - t1;
        *tsc = t1 + best / 2;
        *ns = n;
    }
    if (best == UINT64_MAX) { /* the TSC went backwards every time */
        *tsc = obs_tsc();
        *ns = clock_ns();
    }
}

/* The kernel keeps time with the TSC, and the CPU says the TSC is invariant
 * (constant rate, running through sleep states).  kvm-clock counts: a KVM
 * guest's clock is the host's TSC read by the guest and scaled with
 * parameters the host publishes, which is what we do (the vDSO reads it in
 * user space only when the host marks it stable; our own calibration
 * checks the rate on every re-anchor and gives up on nonsense). */
static int tsc_trustworthy(void)
{
#if OBS_HAVE_TSC
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
        return 0;
#else
    return 0; /* no TSC: clock_gettime() always */
#endif
    char buf[32] = { 0 };
    int fd = REAL(open)("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = REAL(read)(fd, buf, sizeof buf - 1);
    REAL(close)(fd);
    buf[strcspn(buf, "\n")] = '\0';
    return n > 0 && (strcmp(buf, "tsc") == 0 || strcmp(buf, "kvm-clock") == 0);
}

void obs_clock_init(void)
{
    const char *how = getenv("OBSERVE_CLOCK");
    if (how && strcmp(how, "monotonic") == 0) {
        __atomic_store_n(&clock_mode, CLOCK_OFF, __ATOMIC_RELEASE);
        return;
    }
    clock_pair(&base_tsc, &base_ns);
    __atomic_store_n(&clock_mode, CLOCK_CALIBRATING, __ATOMIC_RELEASE);
}

/* (Re)calibrate mult from the baseline; 0 if the TSC misbehaves. */
static int calibrate(uint64_t tsc, uint64_t ns)
{
    if (tsc <= base_tsc || ns <= base_ns)
        return 0;
    unsigned __int128 m = ((unsigned __int128)(ns - base_ns) << 32) / (tsc - base_tsc);
    if (m < (1ull << 32) / 16 || m > (1ull << 32) * 4) /* 0.06 to 4 ns per tick */
        return 0;
    __atomic_store_n(&obs_clock_mult, (uint64_t)m, __ATOMIC_RELAXED);
    return 1;
}

static void clock_off(void)
{
    __atomic_store_n(&obs_clock_tsc, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&clock_mode, CLOCK_OFF, __ATOMIC_RELEASE);
}

/* Past the baseline: the first thread here decides whether the TSC path
 * starts; the others go on reading the clock meanwhile.  1 if it started. */
static int tsc_start(uint64_t tsc, uint64_t ns)
{
    int expect = CLOCK_CALIBRATING;
    if (!__atomic_compare_exchange_n(&clock_mode, &expect, CLOCK_STARTING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return 0;
    int saved = errno, trusted = tsc_trustworthy();
    errno = saved;
    if (!trusted || !calibrate(tsc, ns)) {
        clock_off();
        return 0;
    }
    uint64_t window = (BASELINE_NS << 32) / __atomic_load_n(&obs_clock_mult, __ATOMIC_RELAXED);
    __atomic_store_n(&obs_clock_window, window, __ATOMIC_RELAXED);
    __atomic_store_n(&clock_since, ns, __ATOMIC_RELEASE);
    __atomic_store_n(&obs_clock_tsc, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&clock_mode, CLOCK_TSC, __ATOMIC_RELEASE);
    publish_since();
    return 1;
}

/* Re-anchor this thread at (tsc, ns), never behind what its old anchor
 * would say, so its timestamps never go backwards. */
static uint64_t reanchor(uint64_t tsc, uint64_t ns)
{
    struct obs_clock_anchor *a = &obs_tls_clock;
    uint64_t mult = __atomic_load_n(&obs_clock_mult, __ATOMIC_RELAXED);
    uint64_t window = __atomic_load_n(&obs_clock_window, __ATOMIC_RELAXED);
    if (a->tsc0 && tsc > a->tsc0 && tsc - a->tsc0 < 2 * window) {
        uint64_t old = a->ns0 + (uint64_t)(((unsigned __int128)(tsc - a->tsc0) * mult) >> 32);
        if (old > ns)
            ns = old;
    }
    /* a signal handler's obs_now() between these stores must not pair one
     * anchor's tsc0 with the other's ns0: tsc0 = 0 sends it the slow way */
    a->tsc0 = 0;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    a->ns0 = ns;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    a->tsc0 = tsc;
    return ns;
}

uint64_t obs_clock_slow(void)
{
    int mode = __atomic_load_n(&clock_mode, __ATOMIC_ACQUIRE);
    if (mode != CLOCK_CALIBRATING && mode != CLOCK_TSC)
        return clock_ns(); /* no TSC to read: every timestamp is a real one */
    uint64_t tsc, ns;
    clock_pair(&tsc, &ns);
    if (mode == CLOCK_CALIBRATING) {
        if (ns - base_ns < BASELINE_NS || !tsc_start(tsc, ns))
            return ns;
    } else if (!calibrate(tsc, ns)) {
        clock_off();
        return ns;
    }
    return reanchor(tsc, ns);
}
