/* firstsock — the one-time cost of a process's first AF_INET socket, where
 * libobserve creates the process's log (directory checks, the file, its
 * header: the identity read from /proc).  A client sees it inside its first
 * connection's setup.  Prints "first_socket_us=X second_socket_us=Y".
 *   firstsock
 */
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: firstsock\n");
        return 2;
    }
    double t0 = now_us();
    int a = socket(AF_INET, SOCK_STREAM, 0);
    double t1 = now_us();
    int b = socket(AF_INET, SOCK_STREAM, 0);
    double t2 = now_us();
    if (a < 0 || b < 0) {
        perror("firstsock: socket");
        return 1;
    }
    printf("first_socket_us=%.1f second_socket_us=%.1f\n", t1 - t0, t2 - t1);
    close(a);
    close(b);
    return 0;
}
