/* twothreads — a keep-alive HTTP client whose requests are sent by one
 * thread and whose responses are read by another, as a JVM's HTTP client
 * or any program with a reader thread does: the reader sits in recv() on
 * the connection while the sender's send() of the next request is still in
 * the kernel, so an answer can arrive before the send has returned.
 *   twothreads PORT REQUESTS [BODY]
 * sends GETs, or with BODY POSTs of BODY bytes each (in one send), and
 * prints  requests=N bytes_sent=S bytes_received=B
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <string.h>

#include "progs.h"

static int fd, requests;
static sem_t answered; /* posted by the reader after each whole response */
static long received;

/* Reads whole responses (headers with Content-Length) one after another. */
static void *reader(void *arg)
{
    (void)arg;
    char buf[65536], head[8192];
    for (int i = 0; i < requests; i++) {
        long have = 0, need = -1;
        size_t hdr = 0;
        while (need < 0 || have < need) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                perror("recv");
                exit(1);
            }
            if (need < 0) {
                size_t take = (size_t)n < sizeof head - 1 - hdr ? (size_t)n : sizeof head - 1 - hdr;
                memcpy(head + hdr, buf, take);
                head[hdr += take] = '\0';
                char *end = strstr(head, "\r\n\r\n");
                if (end) {
                    char *cl = strcasestr(head, "Content-Length:");
                    need = (long)(end + 4 - head) + (cl ? atol(cl + 15) : 0);
                }
            }
            have += n;
        }
        received += have;
        sem_post(&answered);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: twothreads PORT REQUESTS [BODY]\n");
        return 2;
    }
    requests = atoi(argv[2]);
    size_t body = argc == 4 ? (size_t)atol(argv[3]) : 0;
    fd = dial_loopback(atoi(argv[1]));
    sem_init(&answered, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    char *req = malloc(body + 256);
    if (!req)
        return 1;
    int head = body ? sprintf(req, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n\r\n", body)
                    : sprintf(req, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n");
    memset(req + head, 'x', body);
    size_t len = (size_t)head + body;
    long sent = 0;
    for (int i = 0; i < requests; i++) {
        if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
            perror("send");
            return 1;
        }
        sent += (long)len;
        while (sem_wait(&answered) != 0)
            ;
    }
    pthread_join(t, NULL);
    close(fd);
    printf("requests=%d bytes_sent=%ld bytes_received=%ld\n", requests, sent, received);
    return 0;
}
