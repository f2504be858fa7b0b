/* forkexec — a client that forks and execs, for the one-log-per-process
 * test.  The parent opens a connection and keeps it across fork; the child
 * closes its inherited copy, makes a request of its own, then execs this
 * program again ("exec PORT"), which makes one more request.  The parent
 * then uses the connection it kept.  Each process prints "pid=P requests=N".
 */
#define _GNU_SOURCE
#include "progs.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* One HTTP/1.0 request; the server closes after the reply. */
static void request(int s)
{
    char buf[8192];
    const char *req = "GET / HTTP/1.0\r\n\r\n";
    if (send(s, req, strlen(req), 0) < 0)
        exit(1);
    while (recv(s, buf, sizeof buf, 0) > 0)
        ;
    close(s);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: forkexec fork PORT | exec PORT\n");
        return 2;
    }
    int port = atoi(argv[2]);
    if (strcmp(argv[1], "exec") == 0) {
        request(dial_loopback(port));
        printf("pid=%d requests=1\n", getpid());
        return 0;
    }
    int kept = dial_loopback(port);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(kept);
        request(dial_loopback(port));
        printf("pid=%d requests=1\n", getpid());
        fflush(stdout);
        execl("/proc/self/exe", argv[0], "exec", argv[2], (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    request(kept);
    printf("pid=%d requests=1\n", getpid());
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
