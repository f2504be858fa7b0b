/* lab.h — what the lab's programs share (lab.c): an event base on the
 * dispatch mechanism the run asks for, confirmed, as in the thesis's
 * experiments; the descriptor limit raised for thousands of sockets; a
 * clean stop on SIGINT/SIGTERM.
 */
#ifndef LAB_H
#define LAB_H

#include <event2/event.h>

/* An event base that uses exactly `backend` (select, poll or epoll), chosen
 * with event_config_avoid_method() for every other method and confirmed with
 * event_base_get_method(); NULL with a message naming prog otherwise. */
struct event_base *lab_base(const char *prog, const char *backend);

/* Raises RLIMIT_NOFILE to at least want (up to the hard limit, or beyond it
 * when privileged); returns the soft limit now in force. */
long lab_raise_nofile(long want);

/* Stops the base's loop on SIGINT or SIGTERM. */
void lab_stop_on_signals(struct event_base *base);

/* A number from text within [min, max], or -1 with a message. */
long lab_number(const char *prog, const char *what, const char *text, long min, long max);

#endif
