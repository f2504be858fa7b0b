/* hostile — programs that do to the library what a hostile or unlucky
 * world does: signal handlers that fork, clone() without a shared memory,
 * nearly all of an address-space limit taken, processes started in a race,
 * a log truncated under the program, the program's own SIGBUS.
 *
 *   hostile sigfork SECONDS
 *     SIGALRM every 200 us; its handler forks (at most every 2 ms; the child
 *     _exits, the handler reaps it) while the main loop ping-pongs on a
 *     tracked loopback connection, so that forks land inside the log's
 *     growth.  Prints: rounds=N forks=F
 *   hostile clone PORT
 *     Makes a socket (the log is created), then clone() without CLONE_VM;
 *     the child connects to PORT, sends a request,
 *     reads the answer and exits.  Prints: child=PID status=S
 *   hostile malloc MB
 *     Makes a socket (the log is created), then mallocs MB MiB and touches
 *     one byte of each page.  Prints: malloc=ok, or malloc=failed and exits 1.
 *   hostile truncate LOGDIR ROUNDS
 *     Ping-pongs on a tracked connection; after the first round it
 *     truncates its own log to nothing (as `: > log` would), then goes on.
 *     Prints: rounds=N
 *   hostile ownbus
 *     Makes a socket (the log is created and mapped), then installs its own
 *     SIGBUS handler (signal(), then sigaction()), touches a page of a file
 *     it has truncated and jumps out of the handler; then sends itself
 *     SIGBUS.  Prints: fault=caught sent=caught
 *   hostile children N
 *     Forks N children one after another; each makes one socket (and so its
 *     own log, the parent having none) and _exits.  Prints: children=N
 */
#define _GNU_SOURCE
#include "progs.h"

#include <dirent.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

static volatile sig_atomic_t forks;
static struct timespec last_fork;

static void on_alarm(int sig)
{
    (void)sig;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long since_us = (now.tv_sec - last_fork.tv_sec) * 1000000 + (now.tv_nsec - last_fork.tv_nsec) / 1000;
    if (since_us < 2000)
        return;
    last_fork = now;
    int saved = errno;
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    if (p > 0) {
        waitpid(p, NULL, 0);
        forks++;
    }
    errno = saved;
}

static void ping_pong_once(int sv[2])
{
    char c = 'x';
    if (write(sv[0], &c, 1) != 1 || read(sv[1], &c, 1) != 1 || write(sv[1], &c, 1) != 1 ||
        read(sv[0], &c, 1) != 1) {
        if (errno == EINTR)
            return;
        perror("ping-pong");
        exit(2);
    }
}

static int sigfork(double seconds)
{
    int sv[2];
    loopback_pair(sv);
    struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { .it_interval = { 0, 200 }, .it_value = { 0, 200 } };
    setitimer(ITIMER_REAL, &it, NULL);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long rounds = 0;
    do {
        for (int i = 0; i < 1000; i++)
            ping_pong_once(sv);
        rounds += 1000;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    printf("rounds=%ld forks=%d\n", rounds, (int)forks);
    return 0;
}

static int clone_child(void *arg)
{
    int fd = dial_loopback(*(int *)arg);
    const char req[] = "GET / HTTP/1.0\r\n\r\n";
    char buf[4096];
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
        return 3;
    while (read(fd, buf, sizeof buf) > 0)
        ;
    close(fd);
    return 0;
}

static int clone_no_vm(int port)
{
    int mine = socket(AF_INET, SOCK_STREAM, 0);
    size_t size = 256 << 10;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return 2;
    pid_t pid = clone(clone_child, stack + size, SIGCHLD, &port);
    if (pid < 0) {
        perror("clone");
        return 2;
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 2;
    printf("child=%d status=%d\n", (int)pid, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    close(mine);
    return 0;
}

static int big_malloc(long mb)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t n = (size_t)mb << 20;
    char *p = malloc(n);
    if (!p) {
        printf("malloc=failed\n");
        return 1;
    }
    for (size_t i = 0; i < n; i += 4096)
        p[i] = 1;
    printf("malloc=ok\n");
    free(p);
    close(fd);
    return 0;
}

static void ping_pong_rounds(int sv[2], long rounds)
{
    for (long i = 0; i < rounds; i++)
        ping_pong_once(sv);
}

static int truncate_own_log(const char *dir, long rounds)
{
    int sv[2];
    loopback_pair(sv);
    ping_pong_once(sv);
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096] = "", mine[32];
    snprintf(mine, sizeof mine, ".%d.", (int)getpid());
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, mine) && strstr(e->d_name, ".olog"))
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (d)
        closedir(d);
    if (!*path || truncate(path, 0) != 0) {
        perror("truncate the log");
        return 2;
    }
    ping_pong_rounds(sv, rounds - 1);
    close(sv[0]);
    close(sv[1]);
    printf("rounds=%ld\n", rounds);
    return 0;
}

static sigjmp_buf bus_back;
static volatile sig_atomic_t bus_signals;

static void on_bus(int sig)
{
    (void)sig;
    bus_signals++;
}

static void on_bus_jump(int sig, siginfo_t *si, void *ctx)
{
    (void)sig, (void)si, (void)ctx;
    siglongjmp(bus_back, 1);
}

static int own_sigbus(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    char path[] = "/tmp/hostile-bus-XXXXXX";
    int fd = mkstemp(path);
    if (s < 0 || fd < 0 || ftruncate(fd, 4096) != 0)
        return 2;
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    unlink(path);
    if (page == MAP_FAILED || ftruncate(fd, 0) != 0)
        return 2;
    signal(SIGBUS, on_bus); /* replaced next: what sigaction returns must be it */
    struct sigaction sa = { .sa_sigaction = on_bus_jump, .sa_flags = SA_SIGINFO }, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &old);
    if (old.sa_handler != on_bus)
        return 3;
    const char *fault = "missed";
    if (sigsetjmp(bus_back, 1) == 0)
        page[0] = 1;
    else
        fault = "caught";
    signal(SIGBUS, on_bus);
    raise(SIGBUS);
    printf("fault=%s sent=%s\n", fault, bus_signals == 1 ? "caught" : "missed");
    return 0;
}

static int children(int n)
{
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) {
            (void)socket(AF_INET, SOCK_STREAM, 0);
            _exit(0);
        }
        if (p < 0 || waitpid(p, NULL, 0) != p) {
            perror("fork");
            return 2;
        }
    }
    printf("children=%d\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "sigfork") == 0)
        return sigfork(atof(argv[2]));
    if (argc == 3 && strcmp(argv[1], "clone") == 0)
        return clone_no_vm(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "malloc") == 0)
        return big_malloc(atol(argv[2]));
    if (argc == 4 && strcmp(argv[1], "truncate") == 0)
        return truncate_own_log(argv[2], atol(argv[3]));
    if (argc == 2 && strcmp(argv[1], "ownbus") == 0)
        return own_sigbus();
    if (argc == 3 && strcmp(argv[1], "children") == 0)
        return children(atoi(argv[2]));
    fprintf(stderr, "usage: hostile sigfork SECONDS | clone PORT | malloc MB | truncate LOGDIR ROUNDS | ownbus | children N\n");
    return 2;
}
