/* forkodd — the ways of starting a process that trip up interposers:
 *   forkodd atfork N   N forks whose atfork handlers (prepare, parent,
 *                      child) each raise a signal whose handler sends one
 *                      byte on a tracked TCP connection, while a 1 ms timer
 *                      sends too.  Every child sends from its handler and
 *                      exits with the count.  Prints
 *                        forks=N hung=H parent_sent=P child_sent=C received=R
 *   forkodd vfork PORT  a keep-alive connection to PORT: request, then
 *                      vfork+exec, vfork+_exit, vfork whose child closes and
 *                      dup2s over the connection's fd, posix_spawn with a
 *                      close action on it; then the response is read and a
 *                      second request made.  Prints
 *                        children=K ok=1 sent=S received=R
 * A child that does not end within 10 s is a hang: killed and counted.
 */
#define _GNU_SOURCE
#include "progs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int tx = -1;           /* the tracked connection the handlers send on */
static atomic_long sent_here; /* bytes this process sent from handlers */

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    if (send(tx, "s", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
        atomic_fetch_add(&sent_here, 1);
    errno = saved;
}

static void raise_usr1(void) { raise(SIGUSR1); }

static void child_after_fork(void)
{
    /* the child's own count starts at zero: what it sends is its own */
    atomic_store(&sent_here, 0);
    raise(SIGUSR1);
}

/* Waits for pid at most 10 s; returns its exit status, or -1 (hung, killed). */
static int wait_bounded(pid_t pid)
{
    int st;
    for (int i = 0; i < 1000; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 && errno != EINTR)
            return -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static int atfork(int forks)
{
    int sv[2];
    loopback_pair(sv);
    tx = sv[0];
    struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    pthread_atfork(raise_usr1, raise_usr1, child_after_fork);
    struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    int hung = 0;
    long child_sent = 0;
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit((int)atomic_load(&sent_here)); /* itimers are not inherited */
        int st = pid > 0 ? wait_bounded(pid) : -1;
        if (st < 0 || st > 100)
            hung++;
        else
            child_sent += st;
    }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_IGN);
    long received = 0;
    char buf[4096];
    ssize_t n;
    while ((n = recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)) > 0 || (n < 0 && errno == EINTR))
        received += n > 0 ? n : 0;
    printf("forks=%d hung=%d parent_sent=%ld child_sent=%ld received=%ld\n", forks, hung,
           atomic_load(&sent_here), child_sent, received);
    close(sv[0]);
    close(sv[1]);
    return hung ? 1 : 0;
}

/* Reads one HTTP response with a Content-Length; returns its bytes or -1. */
static long read_response(int fd)
{
    char buf[65536];
    long have = 0, need = -1;
    while (need < 0 || have < need) {
        ssize_t n = recv(fd, buf + (have < 60000 ? have : 0), have < 60000 ? sizeof buf - (size_t)have : 4096, 0);
        if (n <= 0)
            return -1;
        have += n;
        if (need < 0 && have < 60000) {
            buf[have] = '\0';
            char *end = strstr(buf, "\r\n\r\n"), *cl = strcasestr(buf, "Content-Length:");
            if (end && cl)
                need = (long)(end + 4 - buf) + atol(cl + 15);
        }
    }
    return have;
}

static int vfork_children(int fd)
{
    int children = 0, bad = 0;
    pid_t pid = vfork();
    if (pid == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    children++;
    bad += wait_bounded(pid) != 0;
    pid = vfork();
    if (pid == 0)
        _exit(0);
    children++;
    bad += wait_bounded(pid) != 0;
    pid = vfork();
    if (pid == 0) {
        /* what a shell's child does before exec: these are the child's own
         * descriptors; the parent's connection must not notice */
        int other = socket(AF_INET, SOCK_STREAM, 0);
        dup2(other, fd);
        close(fd);
        close(other);
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    children++;
    bad += wait_bounded(pid) != 0;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addclose(&fa, fd);
    char *argv[] = { "true", NULL };
    if (posix_spawn(&pid, "/bin/true", &fa, NULL, argv, environ) == 0) {
        children++;
        bad += wait_bounded(pid) != 0;
    } else {
        bad++;
    }
    posix_spawn_file_actions_destroy(&fa);
    return bad ? -1 : children;
}

static int vforks(int port)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = dial_loopback(port);
    long sent = 0, received = 0, r;
    sent += send(fd, req, sizeof req - 1, 0);
    int children = vfork_children(fd);
    r = read_response(fd);
    received += r > 0 ? r : 0;
    sent += send(fd, req, sizeof req - 1, 0);
    r = read_response(fd);
    received += r > 0 ? r : 0;
    close(fd);
    printf("children=%d ok=%d sent=%ld received=%ld\n", children, children > 0 && r > 0, sent, received);
    return children > 0 && r > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "atfork") == 0)
        return atfork(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "vfork") == 0)
        return vforks(atoi(argv[2]));
    fprintf(stderr, "usage: forkodd atfork N | vfork PORT\n");
    return 2;
}
