/* observe-httpd — the lab's HTTP server: libevent's evhttp on one event base
 * whose dispatch mechanism (select, poll or epoll) is chosen per run, as in
 * the thesis's experiments.  The backend is forced with
 * event_config_avoid_method() for every other method and confirmed with
 * event_base_get_method(); the choice is printed at start.
 *
 * Every request gets a reply body of --size bytes.  With --port 0 the kernel
 * picks a port; the line printed at start says which.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "lab.h"

static const char *prog = "observe-httpd";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [--backend select|poll|epoll] [--addr ADDR] [--port PORT] [--size BYTES]\n"
            "       [--delay-ms MS]\n"
            "\n"
            "HTTP server on libevent with a chosen event dispatch mechanism.\n"
            "  --backend M   select, poll or epoll (default epoll)\n"
            "  --addr ADDR   address to listen on (default 127.0.0.1)\n"
            "  --port PORT   port (default 8080; 0 lets the kernel choose)\n"
            "  --size BYTES  reply body size (default 1024, at most 64 MiB)\n"
            "  --delay-ms MS server think time before each reply (default 0)\n"
            "Prints 'observe-httpd: listening on ADDR:PORT backend=M' once ready.\n"
            "Stops on SIGINT or SIGTERM.\n",
            prog);
}

struct reply {
    char *body;
    size_t size;
    struct timeval delay;   /* server think time before each reply */
    struct event_base *base;
};

static void send_reply(struct evhttp_request *req, const struct reply *r)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    evbuffer_add_reference(out, r->body, r->size, NULL, NULL);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/octet-stream");
    evhttp_send_reply(req, HTTP_OK, "OK", NULL);
}

struct delayed {
    struct evhttp_request *req;
    const struct reply *r;
    struct event *timer;
};

static void on_delay_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct delayed *d = arg;
    send_reply(d->req, d->r);
    event_free(d->timer);
    free(d);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    const struct reply *r = arg;
    if (!r->delay.tv_sec && !r->delay.tv_usec) {
        send_reply(req, r);
        return;
    }
    struct delayed *d = malloc(sizeof *d);
    if (!d) {
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    d->req = req;
    d->r = r;
    d->timer = evtimer_new(r->base, on_delay_done, d);
    evtimer_add(d->timer, &r->delay);
}

int main(int argc, char **argv)
{
    const char *backend = "epoll", *addr = "127.0.0.1";
    long port = 8080, size = 1024, delay_ms = 0;
    static const struct option opts[] = {
        { "backend", required_argument, NULL, 'b' }, { "addr", required_argument, NULL, 'a' },
        { "port", required_argument, NULL, 'p' },    { "size", required_argument, NULL, 's' },
        { "delay-ms", required_argument, NULL, 'd' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "b:a:p:s:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': backend = optarg; break;
        case 'a': addr = optarg; break;
        case 'p':
            if ((port = lab_number(prog, "port", optarg, 0, 65535)) < 0)
                return 2;
            break;
        case 's':
            if ((size = lab_number(prog, "size", optarg, 0, 64L << 20)) < 0)
                return 2;
            break;
        case 'd':
            if ((delay_ms = lab_number(prog, "delay", optarg, 0, 60000)) < 0)
                return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        return 2;
    }
    if (strcmp(backend, "select") != 0 && strcmp(backend, "poll") != 0 && strcmp(backend, "epoll") != 0) {
        fprintf(stderr, "%s: unknown backend '%s' (select, poll or epoll)\n", prog, backend);
        return 2;
    }
    /* thousands of idle connections; select itself stops at FD_SETSIZE */
    lab_raise_nofile(65536);
    struct event_base *base = lab_base(prog, backend);
    if (!base)
        return 1;
    struct reply reply = { malloc((size_t)size + 1), (size_t)size,
                           { delay_ms / 1000, (delay_ms % 1000) * 1000 }, base };
    if (!reply.body) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return 1;
    }
    for (long i = 0; i < size; i++)
        reply.body[i] = (char)('a' + i % 26);
    struct evhttp *http = evhttp_new(base);
    evhttp_set_gencb(http, on_request, &reply);
    evhttp_set_timeout(http, 3600); /* idle connections are the experiment: keep them */
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(http, addr, (ev_uint16_t)port);
    if (!sock) {
        fprintf(stderr, "%s: cannot listen on %s:%ld: %s\n", prog, addr, port, strerror(errno));
        return 1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int real_port = (int)port;
    if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
            real_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
            real_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    lab_stop_on_signals(base);
    printf("%s: listening on %s:%d backend=%s size=%ld\n", prog, ip, real_port, event_base_get_method(base), size);
    fflush(stdout);
    event_base_dispatch(base);
    evhttp_free(http);
    event_base_free(base);
    free(reply.body);
    return 0;
}
