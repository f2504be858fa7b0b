/* sigjump — a timer whose handler leaves by siglongjmp() (the old way of
 * putting a timeout on a blocking call), firing 5,000 times a second while
 * the main loop sends and receives on one tracked connection.  Some jumps
 * land in the middle of the library's own bookkeeping and never return to
 * it; the library must not stay stuck there.  Then, with the timer off, a
 * second connection sends AFTER bytes one at a time, its far end reads
 * them, and both are closed: their records must be exact.
 *   sigjump [SECONDS]
 * Prints: jumps=J after=A after_received=R
 *   sigjump create
 * SIGUSR1's handler jumps back past the process's first socket(), the one
 * that creates the log; the test raises SIGUSR1 there (strace, at the log's
 * fallocate).  Then a second thread makes a connection: it must not wait
 * forever for a log whose creation was left.  A watchdog ends the process
 * after 20 s.  Prints: jumped=J thread_connected=1
 */
#define _GNU_SOURCE
#include "progs.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#define AFTER 1000

static sigjmp_buf back;
static volatile sig_atomic_t jumps;

static void on_timer(int sig)
{
    (void)sig;
    siglongjmp(back, 1);
}

static long elapsed_ns(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000000000L + (now.tv_nsec - t0->tv_nsec);
}

static void *connect_once(void *arg)
{
    (void)arg;
    int sv[2];
    loopback_pair(sv);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static int jump_out_of_creation(void)
{
    struct sigaction sa = { .sa_handler = on_timer };
    sigaction(SIGUSR1, &sa, NULL);
    alarm(20);
    if (sigsetjmp(back, 1) == 0)
        (void)!socket(AF_INET, SOCK_STREAM, 0);
    else
        jumps++;
    pthread_t t;
    if (pthread_create(&t, NULL, connect_once, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 2;
    printf("jumped=%d thread_connected=1\n", (int)jumps);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "create") == 0)
        return jump_out_of_creation();
    /* static: siglongjmp back into main must find them as they were */
    static int seconds, ab[2];
    static struct timespec t0;
    static timer_t timer;
    seconds = argc > 1 ? atoi(argv[1]) : 1;
    loopback_pair(ab);
    struct sigaction sa = { .sa_handler = on_timer };
    sigaction(SIGUSR1, &sa, NULL);
    struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
    struct itimerspec every = { { 0, 200000 }, { 0, 200000 } };
    if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0) {
        perror("sigjump: timer");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    timer_settime(timer, 0, &every, NULL);
    if (sigsetjmp(back, 1))
        jumps++;
    while (elapsed_ns(&t0) < seconds * 1000000000L) {
        char buf[4096];
        (void)!send(ab[0], "j", 1, MSG_DONTWAIT);
        (void)!recv(ab[1], buf, sizeof buf, MSG_DONTWAIT);
    }
    timer_delete(timer);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    close(ab[0]);
    close(ab[1]);

    int cd[2];
    loopback_pair(cd);
    long received = 0;
    for (int i = 0; i < AFTER; i++) {
        char x;
        if (send(cd[0], "a", 1, 0) != 1 || recv(cd[1], &x, 1, 0) != 1) {
            perror("sigjump: after");
            return 1;
        }
        received++;
    }
    close(cd[0]);
    close(cd[1]);
    printf("jumps=%d after=%d after_received=%ld\n", (int)jumps, AFTER, received);
    return 0;
}
