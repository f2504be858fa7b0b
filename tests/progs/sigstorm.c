/* sigstorm — a timer firing thousands of times a second whose handler sends
 * on a tracked socket, while the main loop ping-pongs on two others: the
 * library's bookkeeping is interrupted at every point by more of itself.
 *   sigstorm [SECONDS] [shared]
 * With "shared" the handler sends on the connection the main loop sends its
 * pings on, so it lands in the middle of the bookkeeping of that very
 * connection (its bytes are drained from the far end at the end).
 * Prints: rounds=R signals=S handler_bytes=H drained=D; exits 3 if a
 * watchdog finds it stuck (a deadlock), 1 on a mismatch.
 */
#define _GNU_SOURCE
#include "progs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int hfd = -1;
static volatile sig_atomic_t signals, handler_bytes;

static void on_timer(int sig)
{
    (void)sig;
    int saved = errno;
    signals++;
    if (send(hfd, "s", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
        handler_bytes++;
    errno = saved;
}

static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "sigstorm: stuck\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(3);
}

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 2;
    int shared = argc > 2 && strcmp(argv[2], "shared") == 0;
    int ab[2], cd[2];
    loopback_pair(ab);
    loopback_pair(cd);
    int a = ab[0], b = ab[1], c = cd[0], d = cd[1];
    hfd = shared ? a : c;
    int far_end = shared ? b : d; /* where the handler's bytes arrive */
    signal(SIGALRM, on_watchdog);
    alarm((unsigned)seconds + 20);
    struct sigaction sa = { .sa_handler = on_timer, .sa_flags = SA_RESTART };
    sigaction(SIGUSR1, &sa, NULL);
    struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
    timer_t timer;
    struct itimerspec every = { { 0, 200000 }, { 0, 200000 } }; /* 5000 a second */
    if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0 || timer_settime(timer, 0, &every, NULL) != 0) {
        perror("sigstorm: timer");
        return 2;
    }
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long rounds = 0;
    char x;
    do {
        if (send(a, "p", 1, 0) != 1 || recv(b, &x, 1, 0) != 1 || send(b, "q", 1, 0) != 1 || recv(a, &x, 1, 0) != 1) {
            if (errno == EINTR)
                continue;
            perror("sigstorm: ping-pong");
            return 1;
        }
        rounds++;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - t0.tv_sec) * 1000000000L + (now.tv_nsec - t0.tv_nsec) < seconds * 1000000000L);
    timer_delete(timer);
    /* a signal still pending is never delivered: what the handler counted
     * is all it will send */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    /* loopback delivers in a softirq that may run a moment later: drain
     * until nothing more has come for 200 ms */
    long drained = 0;
    char buf[65536];
    struct pollfd pf = { .fd = far_end, .events = POLLIN };
    ssize_t n;
    while (poll(&pf, 1, 200) == 1 && (n = recv(far_end, buf, sizeof buf, 0)) > 0)
        drained += n;
    printf("rounds=%ld signals=%d handler_bytes=%d drained=%ld\n", rounds, (int)signals, (int)handler_bytes, drained);
    close(a);
    close(b);
    close(c);
    close(d);
    return drained == handler_bytes ? 0 : 1;
}
