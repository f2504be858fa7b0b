/* obs_log.c — the per-process log file of libobserve and its records.
 *
 * The log is created when the process makes its first AF_INET/AF_INET6
 * socket, in OBSERVE_DIR, owner-only and never through a symlink; it gets
 * its name only once its header is written (O_TMPFILE, then linkat).  It is
 * mapped MAP_SHARED, so a record is durable as soon as its stores are done:
 * SIGKILL loses nothing.  Space is reserved with one atomic add on the
 * header's `reserved` word; the file is grown with posix_fallocate (so a full
 * disk is an error we see, not a SIGBUS in the observed program) on a slow
 * path that is entered once per few hundred KiB.  We keep no descriptor open:
 * growing reopens the file by path and checks it is still ours, so a program
 * that closes every fd can never make us write into one of its own.
 */
#include "obs.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>

/* Set while this thread is inside the log's slow paths or a fork's prepare
 * handler: a record made from there (a program's atfork handler that sends)
 * is dropped instead of waiting for what this very thread holds. */
static __thread int obs_tls_busy __attribute__((tls_model("initial-exec")));

/* LOG_UNSTARTED: the library's constructor has not run yet (another
 * library's constructor may connect before ours): no log can be made.
 * LOG_FORKING: no log yet, and a fork is under way: nobody may start
 * creating one until it is over (the child would inherit a half-made log). */
enum { LOG_UNSTARTED, LOG_NONE, LOG_CREATING, LOG_READY, LOG_FAILED, LOG_DISABLED, LOG_FORKING };

/* The log's settings, read from the environment at start (obs_init.c). */
OBS_HIDDEN struct obs_config obs_cfg;

static struct {
    int state;                      /* LOG_* (atomic) */
    char path[PATH_MAX + 128];      /* this process's log file */
    char exe[PATH_MAX];             /* its executable, read once for name and header */
    struct obs_file_header *hdr;    /* the mapping */
    size_t map_len;
    uint64_t ready;                 /* file bytes allocated and faulted in: records go below (atomic) */
    uint64_t allocated;             /* file bytes allocated (under the grow lock) */
    dev_t dev;
    ino_t ino;
    int grow_lock;                  /* spin lock for the grow slow path */
    int warned;
    dev_t err_dev;                  /* what fd 2 was when we started: we speak only there */
    ino_t err_ino;
    int err_known;
} L = { .state = LOG_UNSTARTED };

void obs_say_init(void)
{
    struct stat err;
    if (fstat(2, &err) == 0) {
        L.err_dev = err.st_dev;
        L.err_ino = err.st_ino;
        L.err_known = 1;
    }
}

/* One line on stderr: not into a socket, nor into a file the program has
 * since opened as fd 2 (only where its stderr was when it started), and not
 * under OBSERVE_QUIET.  Safe in a signal handler: fstat and write are. */
static void obs_say_now(const char *msg)
{
    struct stat st;
    if (getenv("OBSERVE_QUIET") || !L.err_known || fstat(2, &st) != 0 || S_ISSOCK(st.st_mode) ||
        st.st_dev != L.err_dev || st.st_ino != L.err_ino || !REAL(write))
        return;
    (void)!REAL(write)(2, msg, strlen(msg));
}

/* The same, once per process for each *once flag. */
static void obs_say(int *once, const char *msg)
{
    if (!__atomic_exchange_n(once, 1, __ATOMIC_RELAXED))
        obs_say_now(msg);
}

/* Why this process goes unobserved. */
void obs_warn(const char *what, const char *detail)
{
    char msg[PATH_MAX + 1024];
    snprintf(msg, sizeof msg, "libobserve: %s%s%s; this process is not observed\n", what, detail ? ": " : "",
             detail ? detail : "");
    obs_say(&L.warned, msg);
}

/* The first record that found no room: said once, then only counted. */
static void obs_warn_dropping(void)
{
    static int said;
    if (__atomic_load_n(&said, __ATOMIC_RELAXED))
        return;
    char msg[PATH_MAX + 512];
    int saved = errno;
    snprintf(msg, sizeof msg, "libobserve: %s cannot grow (OBSERVE_MAX_MB=%llu, a full disk or ulimit -f): records from now on "
             "are dropped and counted\n", L.path, (unsigned long long)(obs_cfg.capacity >> 20));
    obs_say(&said, msg);
    errno = saved;
}

/* ---- the slow paths run with signals blocked ----------------------------- */

/* Creating the log and growing it hold the only locks the library has.  A
 * signal handler of the program's that landed inside them could call fork()
 * (async-signal-safe), whose prepare handler would wait for the lock its
 * own thread holds, or leave them by a long jump.  With every signal
 * blocked there, a handler runs only after the slow path is over.  Two
 * system calls, once per log and once per few hundred KiB of records. */
static void obs_signals_off(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, old);
}

static void obs_signals_on(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* ---- a log truncated under us -------------------------------------------- */

/* Someone who may write the log (its owner, root) can truncate it while we
 * run: a store into a page past its new end raises SIGBUS, which would kill
 * the program.  Our handler, installed when the log is mapped, puts
 * anonymous memory in the log's place (what is recorded from then on goes
 * nowhere), stops recording and returns, so the store is made again and
 * succeeds.  Every other SIGBUS goes to the program's own action, which
 * sigaction() and signal() keep for it (obs_sigbus_action) as if it were
 * installed. */
static struct sigaction obs_app_bus; /* the program's SIGBUS action */
static int obs_bus_ours;             /* our handler is installed */

static void obs_on_sigbus(int sig, siginfo_t *si, void *ctx)
{
    char *base = (char *)L.hdr, *at = si ? (char *)si->si_addr : NULL;
    if (base && at >= base && at < base + L.map_len && si->si_code > 0) {
        __atomic_store_n(&L.state, LOG_FAILED, __ATOMIC_RELEASE);
        mmap(base, L.map_len, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        obs_say_now("libobserve: the log was truncated by another process; this process is no longer "
                             "observed\n");
        return;
    }
    struct sigaction app = obs_app_bus;
    int handled = (app.sa_flags & SA_SIGINFO) || (app.sa_handler != SIG_DFL && app.sa_handler != SIG_IGN);
    if (handled) {
        /* as the kernel would run it: its mask (and SIGBUS unless SA_NODEFER), SA_RESETHAND */
        sigset_t mask = app.sa_mask, old;
        if (!(app.sa_flags & SA_NODEFER))
            sigaddset(&mask, sig);
        if (app.sa_flags & SA_RESETHAND) {
            obs_app_bus.sa_handler = SIG_DFL;
            obs_app_bus.sa_flags &= ~SA_SIGINFO;
        }
        pthread_sigmask(SIG_BLOCK, &mask, &old);
        if (app.sa_flags & SA_SIGINFO)
            app.sa_sigaction(sig, si, ctx);
        else
            app.sa_handler(sig);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    } else {
        /* as without us: a fault made again, or a signal sent again, meets the default action */
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        REAL(sigaction)(SIGBUS, &dfl, NULL);
        obs_bus_ours = 0;
        if (!si || si->si_code <= 0)
            raise(sig);
    }
}

static void obs_take_sigbus(void)
{
    if (obs_bus_ours)
        return;
    (void)REAL(write); /* bound now: the handler may speak (obs_say_now), and must not look it up */
    struct sigaction ours = { .sa_sigaction = obs_on_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK };
    sigemptyset(&ours.sa_mask);
    if (REAL(sigaction)(SIGBUS, &ours, &obs_app_bus) == 0)
        obs_bus_ours = 1;
}

int obs_sigbus_action(const struct sigaction *act, struct sigaction *old)
{
    if (!obs_bus_ours)
        return REAL(sigaction)(SIGBUS, act, old);
    if (old)
        *old = obs_app_bus;
    if (act)
        obs_app_bus = *act;
    return 0;
}

/* ---- creating the log ---------------------------------------------------- */

/* Opens the log directory if it can be trusted; returns its fd or -1 with
 * the reason.  What is checked is what was opened, never what a path named
 * a moment before (someone who can rename at that path could swap a
 * directory and a link between a look and an open).  A symbolic link in its
 * place is followed only if it is ours (one planted in /tmp by someone else,
 * the default being /tmp/observe-UID, would send our logs into any
 * directory of ours it names) and only one level: its target must be the
 * directory itself.  The log is then created relative to the fd, so the
 * directory checked is the directory written. */
static int obs_dir_open_link(int parent, const char *name, const char *dir, char *why, size_t whylen)
{
    struct stat st;
    char target[PATH_MAX];
    int lfd = REAL(openat)(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (lfd < 0 || fstat(lfd, &st) != 0 || !S_ISLNK(st.st_mode)) {
        snprintf(why, whylen, "log directory %s changed while it was opened", dir);
    } else if (st.st_uid != geteuid()) {
        snprintf(why, whylen, "log directory %s is a symbolic link owned by uid %u, not by us", dir,
                 (unsigned)st.st_uid);
    } else {
        ssize_t n = readlinkat(lfd, "", target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            REAL(close)(lfd);
            int dfd = REAL(openat)(parent, target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (dfd < 0)
                snprintf(why, whylen, "cannot open log directory %s (a link to %.200s): %s", dir, target, strerror(errno));
            return dfd;
        }
        snprintf(why, whylen, "cannot read the link %s: %s", dir, strerror(errno));
    }
    if (lfd >= 0)
        REAL(close)(lfd);
    return -1;
}

static int obs_dir_open(const char *dir, char *why, size_t whylen)
{
    struct stat st;
    char parent_path[PATH_MAX];
    const char *slash = strrchr(dir, '/'); /* dir is absolute */
    size_t plen = slash == dir ? 1 : (size_t)(slash - dir);
    memcpy(parent_path, dir, plen);
    parent_path[plen] = '\0';
    const char *name = slash[1] ? slash + 1 : ".";
    int parent = REAL(open)(parent_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (parent < 0) {
        snprintf(why, whylen, "cannot open log directory %s: %s", dir, strerror(errno));
        return -1;
    }
    int dfd = REAL(openat)(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT && mkdirat(parent, name, 0700) == 0) /* the first log of this directory */
        dfd = REAL(openat)(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 && (errno == ELOOP || errno == ENOTDIR))
        dfd = obs_dir_open_link(parent, name, dir, why, whylen);
    else if (dfd < 0)
        snprintf(why, whylen, "cannot open log directory %s: %s", dir, strerror(errno));
    REAL(close)(parent);
    if (dfd < 0)
        return -1;
    int rc = fstat(dfd, &st);
    if (rc != 0)
        snprintf(why, whylen, "cannot stat log directory %s", dir);
    else if (st.st_uid != geteuid())
        snprintf(why, whylen, "log directory %s is owned by uid %u, not by us", dir, (unsigned)st.st_uid);
    else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
        snprintf(why, whylen, "log directory %s is writable by others without the sticky bit", dir);
    else
        return dfd;
    REAL(close)(dfd);
    return -1;
}

static void obs_read_small_file(const char *path, char *buf, size_t len, size_t *got)
{
    *got = 0;
    int fd = REAL(open)(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    while (*got < len - 1) {
        size_t want = len - 1 - *got;
        ssize_t n = REAL(read)(fd, buf + *got, want);
        if (n <= 0)
            break;
        *got += (size_t)n;
        if ((size_t)n < want) /* a short read of a small /proc file: its end (one system call less) */
            break;
    }
    buf[*got] = '\0';
    REAL(close)(fd);
}

/* The command line, NUL-separated as /proc/self/cmdline shows it, from the
 * argv our constructor was given (no /proc read at the first socket);
 * /proc where there was none.  Returns its length (at most len - 1). */
static size_t obs_copy_args(char *buf, size_t len)
{
    size_t n = 0;
    if (!obs_cfg.argv) {
        obs_read_small_file("/proc/self/cmdline", buf, len, &n);
        return n;
    }
    for (int i = 0; i < obs_cfg.argc && obs_cfg.argv[i] && n < len - 1; i++) {
        size_t l = strnlen(obs_cfg.argv[i], len - 1 - n);
        memcpy(buf + n, obs_cfg.argv[i], l);
        n += l;
        if (n < len - 1)
            buf[n++] = '\0';
    }
    return n;
}

static void obs_fill_identity(struct obs_file_header *h)
{
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    h->anchor_realtime_ns = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec;
    h->anchor_monotonic_ns = (int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec;
    if (getrandom(h->run_id, sizeof h->run_id, GRND_NONBLOCK) != (ssize_t)sizeof h->run_id) {
        uint64_t a = (uint64_t)h->anchor_realtime_ns ^ ((uint64_t)getpid() << 32);
        uint64_t b = (uint64_t)h->anchor_monotonic_ns * 0x9E3779B97F4A7C15ull;
        memcpy(h->run_id, &a, 8);
        memcpy(h->run_id + 8, &b, 8);
    }
    h->pid = getpid();
    h->ppid = getppid();
    h->uid = geteuid();
    h->wait_mode = (uint32_t)obs_cfg.wait_mode_all;
    size_t n;
    obs_read_small_file("/proc/sys/kernel/random/boot_id", h->boot_id, sizeof h->boot_id, &n);
    if (n && h->boot_id[n - 1] == '\n')
        h->boot_id[n - 1] = '\0';
    struct utsname u;
    if (uname(&u) == 0)
        memcpy(h->hostname, u.nodename, strnlen(u.nodename, sizeof h->hostname - 1));
    memcpy(h->exe, L.exe, strnlen(L.exe, sizeof h->exe - 1)); /* read by obs_log_name; cut as before */
    h->args_len = (uint32_t)obs_copy_args(h->args, sizeof h->args);
    memcpy(h->tags, obs_cfg.tags, sizeof h->tags);
}

/* A new log starts small (most processes make a few connections); a busy
 * one grows by a quarter of its size, at least 1 MiB, so the slow path is
 * rare. */
static size_t obs_grow_step(uint64_t current)
{
    if (current == 0)
        return 64u << 10;
    uint64_t step = current / 4;
    if (step < (1u << 20)) step = 1u << 20;
    if (step > (64u << 20)) step = 64u << 20;
    return (size_t)step;
}

#define OBS_FAULT_STEP (64u << 10) /* log bytes faulted in at a time: about 30 us here */

/* Fault newly allocated log pages in now, in one call, instead of one
 * page fault at a time on the hot path (MADV_POPULATE_WRITE, Linux 5.14;
 * elsewhere the call fails harmlessly and the pages fault in as before). */
static void obs_prefault(void *base, uint64_t from, uint64_t to)
{
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
    from &= ~(uint64_t)4095;
    if (to > from)
        (void)madvise((char *)base + from, (size_t)(to - from), MADV_POPULATE_WRITE);
}

/* Appends text, or an unsigned number in a base, at *at in buf (of size
 * len, kept NUL-terminated): names and paths without snprintf, whose first
 * call in a process costs about 20 us (obs_init.c formats with these too). */
void obs_put(char *buf, size_t len, size_t *at, const char *text)
{
    while (*text && *at + 1 < len)
        buf[(*at)++] = *text++;
    buf[*at] = '\0';
}

void obs_put_num(char *buf, size_t len, size_t *at, unsigned long long v, unsigned base)
{
    char text[24];
    char *p = text + sizeof text;
    *--p = '\0';
    do
        *--p = "0123456789abcdef"[v % base];
    while ((v /= base) != 0);
    obs_put(buf, len, at, p);
}

/* The log's file name: DIR/EXE.PID.NANOSECONDS.olog, EXE reduced to a safe
 * alphabet (L.exe keeps the whole path for the header).  Returns where the
 * name starts in L.path. */
static int obs_log_name(void)
{
    char base[40];
    ssize_t e = readlink("/proc/self/exe", L.exe, sizeof L.exe - 1);
    L.exe[e > 0 ? e : 0] = '\0';
    const char *b = strrchr(L.exe, '/') ? strrchr(L.exe, '/') + 1 : L.exe;
    size_t i = 0;
    for (; b[i] && i < sizeof base - 1; i++)
        base[i] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", b[i]) ? b[i] : '_';
    base[i] = '\0';
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    size_t at = 0, len = sizeof L.path;
    obs_put(L.path, len, &at, obs_cfg.dir);
    obs_put(L.path, len, &at, "/");
    int dir_len = (int)at;
    obs_put(L.path, len, &at, i ? base : "unknown");
    obs_put(L.path, len, &at, ".");
    obs_put_num(L.path, len, &at, (unsigned long long)getpid(), 10);
    obs_put(L.path, len, &at, ".");
    obs_put_num(L.path, len, &at, (unsigned long long)rt.tv_sec * 1000000000ull + (unsigned long long)rt.tv_nsec, 16);
    obs_put(L.path, len, &at, ".olog");
    return dir_len;
}

/* A log appears under its name only once its header is complete, so that a
 * process killed while creating it leaves no empty or headerless file: it
 * is made unnamed (O_TMPFILE) and linked in when ready.  Where the file
 * system cannot, it is created under its name at once (the reader then
 * reports such a file for what it is).  Either way O_EXCL: never through a
 * link, never over another file. */
static int obs_log_open(int dfd, const char *name, int unnamed)
{
    if (unnamed)
        return REAL(openat)(dfd, ".", O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
    return REAL(openat)(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

/* Give an unnamed log its name (linkat never follows or replaces what is at
 * the name).  Through /proc, which needs no privilege; else AT_EMPTY_PATH. */
static int obs_log_link(int fd, int dfd, const char *name)
{
    char self[40];
    size_t at = 0;
    obs_put(self, sizeof self, &at, "/proc/self/fd/");
    obs_put_num(self, sizeof self, &at, (unsigned)fd, 10);
    if (linkat(AT_FDCWD, self, dfd, name, AT_SYMLINK_FOLLOW) == 0)
        return 0;
    return errno == EEXIST ? -1 : linkat(fd, "", dfd, name, AT_EMPTY_PATH);
}

/* The most bytes the file may have under RLIMIT_FSIZE: growing past it
 * would raise SIGXFSZ, which kills the program.  A limit set later by the
 * program is read at each growth. */
static uint64_t obs_file_limit(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_FSIZE, &r) != 0 || r.rlim_cur == RLIM_INFINITY)
        return UINT64_MAX;
    return (uint64_t)r.rlim_cur & ~(uint64_t)4095;
}

/* Size the new file, map it and write its header.  0, or an errno. */
static int obs_log_fill(int fd)
{
    struct stat st;
    size_t first = OBS_HEADER_SIZE + obs_grow_step(0);
    uint64_t limit = obs_file_limit();
    if (first > limit)
        first = (size_t)limit;
    if (first < OBS_HEADER_SIZE + 4096)
        return EFBIG;
    int err = fstat(fd, &st) != 0 ? errno : posix_fallocate(fd, 0, (off_t)first);
    if (err)
        return err;
    size_t map_len = OBS_HEADER_SIZE + obs_cfg.capacity;
    void *m = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return errno;
    L.dev = st.st_dev;
    L.ino = st.st_ino;
    L.map_len = map_len;
    L.allocated = first;
    L.ready = OBS_HEADER_SIZE + 4096; /* the header and the first records' page: the rest later, off the first socket */
    obs_prefault(m, 0, L.ready);
    struct obs_file_header *h = m;
    h->byte_order = OBS_BYTE_ORDER;
    h->version = OBS_VERSION;
    h->header_size = OBS_HEADER_SIZE;
    h->unit = OBS_UNIT;
    h->capacity = obs_cfg.capacity;
    obs_fill_identity(h);
    h->header_crc = obs_checksum((char *)h + OBS_IDENTITY_BEGIN, OBS_IDENTITY_END - OBS_IDENTITY_BEGIN);
    __atomic_store_n(&h->magic, OBS_MAGIC, __ATOMIC_RELEASE);
    L.hdr = h;
    return 0;
}

/* One attempt at a log, unnamed first or named; 0, or an errno (with what
 * failed in *stage). */
static int obs_log_try(int dfd, const char *name, int unnamed, const char **stage)
{
    int fd = obs_log_open(dfd, name, unnamed);
    if (fd < 0) {
        *stage = "create";
        return errno;
    }
    int err = obs_log_fill(fd);
    *stage = "allocate";
    if (!err && unnamed && obs_log_link(fd, dfd, name) != 0) {
        err = errno;
        *stage = "name";
        munmap(L.hdr, L.map_len);
        L.hdr = NULL;
    }
    REAL(close)(fd);
    if (err && !unnamed)
        unlinkat(dfd, name, 0);
    return err;
}

static int obs_log_create(char *why, size_t whylen)
{
    int dfd = obs_dir_open(obs_cfg.dir, why, whylen);
    if (dfd < 0)
        return -1;
    const char *name = L.path + obs_log_name();
    const char *stage;
    int err = obs_log_try(dfd, name, 1, &stage);
    if (err && err != EEXIST && strcmp(stage, "allocate") != 0)
        err = obs_log_try(dfd, name, 0, &stage); /* no O_TMPFILE here, or no way to link it */
    REAL(close)(dfd);
    if (err) {
        snprintf(why, whylen, "cannot %s log %s: %s", stage, L.path, strerror(err));
        return -1;
    }
    return 0;
}

/* What happens before the log exists (the name lookup before the first
 * socket, the first event waits) is counted here and carried into the
 * header when the log is made, so a log counts from the process's start. */
static struct {
    struct obs_counters counters;
    struct obs_wait_agg waits[OBS_MECH_COUNT];
} obs_before_log;

struct obs_wait_agg *obs_wait_aggs(void)
{
    struct obs_file_header *h = obs_log_header();
    return h ? h->waits : obs_before_log.waits;
}

static void obs_add_words(uint64_t *to, uint64_t *from, size_t bytes)
{
    for (size_t i = 0; i < bytes / sizeof(uint64_t); i++)
        __atomic_fetch_add(&to[i], __atomic_exchange_n(&from[i], 0, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
}

/* Called once the log is ready; the largest blocked time is a maximum, not
 * a sum. */
static void obs_carry_before_log(struct obs_file_header *h)
{
    obs_add_words((uint64_t *)&h->counters, (uint64_t *)&obs_before_log.counters, sizeof h->counters);
    for (unsigned m = 0; m < OBS_MECH_COUNT; m++) {
        uint64_t max = __atomic_exchange_n(&obs_before_log.waits[m].blocked_max_ns, 0, __ATOMIC_RELAXED);
        obs_add_words((uint64_t *)&h->waits[m], (uint64_t *)&obs_before_log.waits[m], sizeof h->waits[m]);
        uint64_t cur = __atomic_load_n(&h->waits[m].blocked_max_ns, __ATOMIC_RELAXED);
        while (max > cur && !__atomic_compare_exchange_n(&h->waits[m].blocked_max_ns, &cur, max, 1,
                                                         __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            ;
    }
}

int obs_wait_mode_all(void)
{
    return obs_cfg.wait_mode_all;
}

/* Make sure this process has a log.  Returns 1 if it has one.  Threads that
 * arrive while another creates it, or while a fork keeps it from being
 * created, wait for the outcome. */
int obs_log_ensure(void)
{
    for (;;) {
        int s = __atomic_load_n(&L.state, __ATOMIC_ACQUIRE);
        if (OBS_LIKELY(s == LOG_READY))
            return 1;
        if (obs_tls_busy || (s != LOG_NONE && s != LOG_CREATING && s != LOG_FORKING))
            return 0;
        if (s != LOG_NONE) {
            sched_yield();
            continue;
        }
        if (!__atomic_compare_exchange_n(&L.state, &s, LOG_CREATING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue;
        char why[PATH_MAX + 512];
        int saved = errno;
        sigset_t mask;
        obs_signals_off(&mask);
        obs_tls_busy = 1;
        int ok = obs_log_create(why, sizeof why) == 0;
        obs_tls_busy = 0;
        if (!ok)
            obs_warn(why, NULL);
        if (ok)
            obs_take_sigbus();
        __atomic_store_n(&L.state, ok ? LOG_READY : LOG_FAILED, __ATOMIC_RELEASE);
        if (ok)
            obs_carry_before_log(L.hdr);
        obs_signals_on(&mask); /* a handler held until now finds the log made */
        if (ok)
            obs_clock_publish_to(&L.hdr->counters.tsc_clock_since_ns);
        errno = saved;
        return ok;
    }
}

struct obs_file_header *obs_log_header(void)
{
    return __atomic_load_n(&L.state, __ATOMIC_ACQUIRE) == LOG_READY ? L.hdr : NULL;
}

void obs_count(size_t counter_offset, uint64_t n)
{
    struct obs_file_header *h = obs_log_header();
    struct obs_counters *c = h ? &h->counters : &obs_before_log.counters;
    __atomic_fetch_add((uint64_t *)((char *)c + counter_offset), n, __ATOMIC_RELAXED);
}

/* ---- growing the file (slow path) ------------------------------------- */

static void obs_grow_lock(void)
{
    while (__atomic_exchange_n(&L.grow_lock, 1, __ATOMIC_ACQUIRE))
        sched_yield();
}

static void obs_grow_unlock(void)
{
    __atomic_store_n(&L.grow_lock, 0, __ATOMIC_RELEASE);
}

/* Allocates file space past need (posix_fallocate, reopening the file by
 * path and checking it is still ours): 0, or -1. */
static int obs_allocate(uint64_t need)
{
    uint64_t want = need + obs_grow_step(L.allocated), limit = obs_file_limit();
    if (want > L.map_len)
        want = L.map_len;
    if (want > limit)
        want = limit;
    int fd = REAL(open)(L.path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    int rc = -1;
    if (want >= need && fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == L.dev && st.st_ino == L.ino &&
        posix_fallocate(fd, 0, (off_t)want) == 0) {
        L.allocated = want;
        rc = 0;
    }
    if (fd >= 0)
        REAL(close)(fd);
    return rc;
}

/* Makes the log ready up to need: allocated (in large steps) and faulted
 * in (OBS_FAULT_STEP at a time, so that no call of the program waits for
 * more than a few dozen pages). */
static int obs_grow(uint64_t need)
{
    if (obs_tls_busy)
        return -1;
    int saved = errno, rc = 0;
    sigset_t mask;
    obs_signals_off(&mask);
    obs_tls_busy = 1;
    obs_grow_lock();
    uint64_t ready = __atomic_load_n(&L.ready, __ATOMIC_ACQUIRE);
    if (need > ready) {
        rc = need > L.allocated ? obs_allocate(need) : 0;
        if (rc == 0) {
            uint64_t to = need + OBS_FAULT_STEP < L.allocated ? need + OBS_FAULT_STEP : L.allocated;
            obs_prefault(L.hdr, ready, to);
            __atomic_store_n(&L.ready, to, __ATOMIC_RELEASE);
        }
    }
    obs_grow_unlock();
    obs_tls_busy = 0;
    obs_signals_on(&mask);
    errno = saved;
    return rc;
}

/* ---- records ------------------------------------------------------------ */

/* Reserve a zeroed slot for a record; NULL (and the drop counted) if there
 * is no room.  The caller fills the fields, then obs_rec_publish().  Space
 * is taken by compare-and-swap, never past the capacity or the file's end
 * (growing it first), so the header never claims a record that was not
 * written, however many threads fill the log at once. */
void *obs_rec_alloc(enum obs_rec_type type)
{
    if (OBS_UNLIKELY(!obs_log_ensure()))
        return NULL;
    struct obs_file_header *h = L.hdr;
    uint64_t bytes = (uint64_t)obs_rec_units[type] * OBS_UNIT;
    uint64_t off = __atomic_load_n(&h->reserved, __ATOMIC_RELAXED);
    for (;;) {
        uint64_t end = OBS_HEADER_SIZE + off + bytes;
        if (OBS_UNLIKELY(off + bytes > obs_cfg.capacity ||
                         (end > __atomic_load_n(&L.ready, __ATOMIC_ACQUIRE) && obs_grow(end) != 0))) {
            OBS_COUNT(dropped, 1);
            obs_warn_dropping();
            return NULL;
        }
        if (OBS_LIKELY(__atomic_compare_exchange_n(&h->reserved, &off, off + bytes, 1, __ATOMIC_RELAXED,
                                                   __ATOMIC_RELAXED)))
            break;
    }
    struct obs_rec_hdr *r = (struct obs_rec_hdr *)((char *)h + OBS_HEADER_SIZE + off);
    r->units = (uint16_t)(bytes / OBS_UNIT);
    r->tag = OBS_TAG(type);
    return r;
}

/* Make a filled slot visible to readers: one 8-byte release store of tag,
 * units and state, so a reader never sees half a header. */
void obs_rec_publish(void *slot, uint32_t flags)
{
    struct obs_rec_hdr *r = slot;
    r->flags = flags;
    uint64_t word = (uint64_t)r->tag | (uint64_t)r->units << 32 | (uint64_t)OBS_STATE_OPEN << 48;
    r->tag = 0;
    r->units = 0;
    __atomic_store_n((uint64_t *)slot, word, __ATOMIC_RELEASE);
}

/* The record will not change again: checksum its fields and mark it FINAL. */
void obs_rec_finalize(void *slot, size_t fields_size)
{
    struct obs_rec_hdr *r = slot;
    r->crc = obs_checksum(r + 1, fields_size);
    __atomic_store_n(&r->state, (uint16_t)OBS_STATE_FINAL, __ATOMIC_RELEASE);
}

void obs_sample_own_time(uint64_t t1)
{
    uint64_t t2 = obs_now();
    struct obs_file_header *h = obs_log_header();
    if (!h)
        return;
    __atomic_fetch_add(&h->counters.lib_ns_sampled, t2 - t1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->counters.lib_samples, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->counters.tracked_calls, OBS_SAMPLE_PERIOD, __ATOMIC_RELAXED);
}

/* ---- fork --------------------------------------------------------------- */

/* Set by the forking thread when it kept the log from being created during
 * the fork (the child has its own copy of the flag). */
static int fork_blocked_creation;

void obs_log_fork_prepare(void)
{
    /* No log may be half-created or half-grown across fork: wait for a
     * creation under way, and let no other thread start one until fork is
     * over (a thread of ours creating it would not exist in the child, which
     * would wait for it forever, holding a descriptor it does not know of). */
    fork_blocked_creation = 0;
    for (;;) {
        int s = __atomic_load_n(&L.state, __ATOMIC_ACQUIRE);
        if (s == LOG_CREATING && !obs_tls_busy) {
            sched_yield();
            continue;
        }
        if (s == LOG_NONE && !__atomic_compare_exchange_n(&L.state, &s, LOG_FORKING, 0, __ATOMIC_ACQ_REL,
                                                          __ATOMIC_ACQUIRE))
            continue;
        fork_blocked_creation = s == LOG_NONE;
        break;
    }
    obs_tls_busy++;
    obs_grow_lock();
}

void obs_log_fork_parent(void)
{
    obs_grow_unlock();
    obs_tls_busy--;
    if (fork_blocked_creation)
        __atomic_store_n(&L.state, LOG_NONE, __ATOMIC_RELEASE);
}

/* In a new child: the log is the parent's, so this process has none yet
 * and will make its own when it needs one.  Returns the parent's mapping
 * (hdr NULL if it had no log), for the caller to read the inherited
 * sockets' state from and then unmap. */
static struct obs_log_inherited obs_log_child(int parent_had_no_log)
{
    struct obs_log_inherited parent = { NULL, 0 };
    memset(&obs_before_log, 0, sizeof obs_before_log); /* the parent's, not the child's */
    L.grow_lock = 0;
    obs_tls_busy = 0;
    if (parent_had_no_log)
        L.state = LOG_NONE; /* neither has the child, yet */
    if (L.state != LOG_READY)
        return parent;
    parent.hdr = L.hdr;
    parent.len = L.map_len;
    L.hdr = NULL;
    L.state = LOG_NONE;
    return parent;
}

struct obs_log_inherited obs_log_fork_child(void)
{
    return obs_log_child(fork_blocked_creation);
}

/* A child of clone(): another thread of the parent may have been creating
 * the log (the child has no such thread) or growing it (the child's copy of
 * the lock is held by nobody). */
struct obs_log_inherited obs_log_clone_child(void)
{
    int s = L.state;
    return obs_log_child(s == LOG_NONE || s == LOG_CREATING || s == LOG_FORKING);
}

/* The library has started: logs can be made from now on. */
void obs_log_start(void)
{
    __atomic_store_n(&L.state, LOG_NONE, __ATOMIC_RELEASE);
}

void obs_log_disable(void)
{
    __atomic_store_n(&L.state, LOG_DISABLED, __ATOMIC_RELEASE);
}
