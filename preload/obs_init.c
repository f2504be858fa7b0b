/* obs_init.c — the start of libobserve in a process, and of its children.
 *
 * The top of the library: it reads the configuration (OBSERVE_*) into the
 * log's obs_cfg, makes the descriptor table, and handles the process's life: exit (open connections closed out in the
 * log), fork and clone (the child gets a log of its own).  It calls the
 * tracking (obs_track.c), the log (obs_log.c) and the clock (obs_clock.c);
 * none of them calls it, and the log and the clock call nothing of ours.
 */
#include "obs.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>

/* Under a finite RLIMIT_AS the program must not feel what we map: the fd
 * table and the log's mapping together take at most 1/32 of the limit (a
 * quarter of that for the table, the rest for the log), so a program that
 * needs nearly all of its limit still gets it. */
#define OBS_AS_SHARE 32

static void obs_fit_address_space(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_AS, &r) != 0 || r.rlim_cur == RLIM_INFINITY)
        return;
    uint64_t budget = (uint64_t)r.rlim_cur / OBS_AS_SHARE;
    uint64_t table = budget / 4 / sizeof(struct obs_fd);
    if (table < 1024)
        table = 1024;
    if (table < obs_fd_cap)
        obs_fd_cap = (unsigned)table;
    uint64_t log = budget - budget / 4;
    log = log > OBS_HEADER_SIZE + (1u << 20) ? (log - OBS_HEADER_SIZE) & ~(uint64_t)0xfffff : 1u << 20;
    if (log < obs_cfg.capacity)
        obs_cfg.capacity = log;
}

/* Reads the environment into obs_cfg: 0, or -1 when this process is not
 * to be observed (said on stderr when that is a mistake of the user's). */
static int obs_configure(void)
{
    const char *dir = getenv("OBSERVE_DIR");
    const char *tags = getenv("OBSERVE_TAGS");
    const char *waits = getenv("OBSERVE_WAITS");
    const char *max_mb = getenv("OBSERVE_MAX_MB");
    const char *off = getenv("OBSERVE_DISABLE");

    if (off && *off && strcmp(off, "0") != 0)
        return -1;
    if (!dir || !*dir) {
        size_t at = 0; /* /tmp/observe-UID, without snprintf (obs_put) */
        obs_put(obs_cfg.dir, sizeof obs_cfg.dir, &at, "/tmp/observe-");
        obs_put_num(obs_cfg.dir, sizeof obs_cfg.dir, &at, (unsigned)geteuid(), 10);
    } else if (dir[0] == '/') {
        if (strlen(dir) >= sizeof obs_cfg.dir - 64) goto bad_dir;
        strcpy(obs_cfg.dir, dir);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd) || strlen(cwd) + strlen(dir) + 2 >= sizeof obs_cfg.dir - 64)
            goto bad_dir;
        size_t c = strlen(cwd);
        memcpy(obs_cfg.dir, cwd, c);
        obs_cfg.dir[c] = '/';
        strcpy(obs_cfg.dir + c + 1, dir);
    }
    if (tags && *tags) {
        if (strlen(tags) >= sizeof obs_cfg.tags) {
            char limit[80];
            snprintf(limit, sizeof limit, "%zu bytes given, at most %zu", strlen(tags), sizeof obs_cfg.tags - 1);
            obs_warn("OBSERVE_TAGS is too long", limit);
            return -1;
        }
        if (!obs_tags_valid(tags)) {
            obs_warn("invalid OBSERVE_TAGS (want key=value,... with keys of [A-Za-z0-9_.:-] and no ',' in values)", NULL);
            return -1;
        }
        strcpy(obs_cfg.tags, tags);
    }
    obs_cfg.wait_mode_all = waits && strcmp(waits, "all") == 0;
    if (waits && *waits && strcmp(waits, "all") != 0 && strcmp(waits, "aggregate") != 0) {
        obs_warn("invalid OBSERVE_WAITS (want aggregate or all)", waits);
        return -1;
    }
    obs_cfg.capacity = 1024ull << 20;
    if (max_mb && *max_mb) {
        char *end;
        unsigned long long mb = strtoull(max_mb, &end, 10);
        if (*end || mb < 1 || mb > (1ull << 20)) {
            obs_warn("invalid OBSERVE_MAX_MB (want 1 to 1048576)", max_mb);
            return -1;
        }
        obs_cfg.capacity = mb << 20;
    }
    obs_fit_address_space();
    return 0;
bad_dir:
    obs_warn("OBSERVE_DIR is too long", NULL);
    return -1;
}

/* The child must never write into its parent's log (the mapping is shared):
 * it gets a log of its own, created lazily, and its inherited sockets get
 * new records there (obs_fork_child in obs_track.c), made while the
 * parent's mapping, where their state is, is still there to read. */
static void obs_child_start(struct obs_log_inherited parent)
{
    obs_later_forget();
    if (!parent.hdr)
        return;
    obs_fork_child();
    munmap(parent.hdr, parent.len);
}

static void obs_fork_child_handler(void) { obs_child_start(obs_log_fork_child()); }

/* A child of clone() without CLONE_VM is a new process no atfork handler
 * was told of; it starts as a fork's child does (obs_log_clone_child says
 * what the log's state means there). */
void obs_clone_child(void) { obs_child_start(obs_log_clone_child()); }

/* glibc calls a library's constructors with the program's argc and argv. */
__attribute__((constructor)) static void obs_init(int argc, char **argv)
{
    obs_cfg.argc = argc;
    obs_cfg.argv = argv;
    obs_say_init();
    /* A setuid or otherwise secure-execution process ignores our environment
     * entirely: it is not observed. */
    if (getauxval(AT_SECURE) || obs_configure() != 0) {
        obs_log_disable();
        return;
    }
    obs_clock_init();
    void *t = mmap(NULL, (size_t)obs_fd_cap * sizeof(struct obs_fd), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (t == MAP_FAILED) {
        obs_log_disable();
        return;
    }
    obs_fds = t;
    pthread_atfork(obs_log_fork_prepare, obs_log_fork_parent, obs_fork_child_handler);
    obs_log_start();
}

/* exit() or a return from main: connections still open are closed out in
 * the log (obs_close_all_at_exit).  Shared libraries' destructors run
 * after the program's atexit handlers, and ours, preloaded first, after
 * the other libraries', so what they send on the way out is seen first. */
__attribute__((destructor)) static void obs_fini(void)
{
    if (obs_log_header())
        obs_close_all_at_exit(obs_now());
}
