/* lab.c — shared by the lab's servers and clients (lab.h). */
#include "lab.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static const char *const known_methods[] = { "select", "poll", "epoll", "devpoll", "kqueue", "evport", "win32", NULL };

struct event_base *lab_base(const char *prog, const char *backend)
{
    if (strcmp(backend, "select") != 0 && strcmp(backend, "poll") != 0 && strcmp(backend, "epoll") != 0) {
        fprintf(stderr, "%s: unknown backend '%s' (select, poll or epoll)\n", prog, backend);
        return NULL;
    }
    struct event_config *cfg = event_config_new();
    if (!cfg)
        return NULL;
    for (int i = 0; known_methods[i]; i++)
        if (strcmp(known_methods[i], backend) != 0)
            event_config_avoid_method(cfg, known_methods[i]);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!base || strcmp(event_base_get_method(base), backend) != 0) {
        fprintf(stderr, "%s: libevent cannot use backend '%s'%s%s\n", prog, backend, base ? "; it chose " : "",
                base ? event_base_get_method(base) : "");
        if (base)
            event_base_free(base);
        return NULL;
    }
    return base;
}

long lab_raise_nofile(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if ((long)rl.rlim_cur < want) {
        struct rlimit more = rl;
        more.rlim_cur = (rlim_t)want;
        if (more.rlim_max < more.rlim_cur)
            more.rlim_max = more.rlim_cur; /* works when privileged */
        if (setrlimit(RLIMIT_NOFILE, &more) != 0) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

void lab_stop_on_signals(struct event_base *base)
{
    signal(SIGPIPE, SIG_IGN);
    event_add(evsignal_new(base, SIGINT, on_signal, base), NULL);
    event_add(evsignal_new(base, SIGTERM, on_signal, base), NULL);
}

long lab_number(const char *prog, const char *what, const char *text, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || errno || v < min || v > max) {
        fprintf(stderr, "%s: bad %s '%s' (%ld to %ld)\n", prog, what, text, min, max);
        return -1;
    }
    return v;
}
