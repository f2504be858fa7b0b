/* forkstorm — fork many times from a process whose threads are busy with
 * network I/O, as a server that spawns helpers does:
 *   forkstorm --port P [--threads T] [--forks F]
 * T threads loop connect/request/response/close against 127.0.0.1:P while
 * the main thread forks F children; each child makes one connection of its
 * own and exits.  A child that does not finish within 10 s is a hang: it is
 * killed and counted.  Prints: forks=F hung=H failed=X parent_conns=N
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int port;
static atomic_int stop;
static atomic_long parent_conns;

static int one_request(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    static const char req[] = "GET / HTTP/1.0\r\n\r\n";
    char buf[4096];
    int ok = send(fd, req, sizeof req - 1, 0) > 0;
    while (ok && recv(fd, buf, sizeof buf, 0) > 0)
        ;
    close(fd);
    return ok ? 0 : -1;
}

static void *busy(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop))
        if (one_request() == 0)
            atomic_fetch_add(&parent_conns, 1);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = 4, forks = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--forks")) forks = atoi(argv[i + 1]);
    }
    if (port <= 0 || threads < 0 || threads > 64 || forks < 1) {
        fprintf(stderr, "usage: forkstorm --port P [--threads T] [--forks F]\n");
        return 2;
    }
    pthread_t tid[64];
    for (int i = 0; i < threads; i++)
        pthread_create(&tid[i], NULL, busy, NULL);
    int hung = 0, failed = 0;
    for (int f = 0; f < forks; f++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(one_request() == 0 ? 0 : 3);
        if (pid < 0) {
            failed++;
            continue;
        }
        int status = 0;
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == pid)
                break;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - t0.tv_sec >= 10) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                hung++;
                break;
            }
            usleep(1000);
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    printf("forks=%d hung=%d failed=%d parent_conns=%ld\n", forks, hung, failed, atomic_load(&parent_conns));
    return hung || failed ? 1 : 0;
}
