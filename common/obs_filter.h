/* obs_filter.h — the filters every observe command takes (peer address or
 * CIDR, port, wall-clock window, tag, executable, side), parsed once and
 * applied either to log records while loading or to the database's views as
 * a WHERE clause whose values are always bound parameters, never SQL text.
 */
#ifndef OBS_FILTER_H
#define OBS_FILTER_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "obs_format.h"

#define OBS_FILTER_MAX_TAGS 16

struct obs_filter {
    int has_peer;
    struct obs_addr net;  /* network address (port unused) */
    int prefix;           /* bits of net that must match */
    int port;             /* peer port, -1 for any */
    int has_since, has_until;
    int64_t since_ns, until_ns; /* wall clock (CLOCK_REALTIME) nanoseconds, [since, until) */
    const char *exe;      /* executable name or path */
    int side;             /* -1 any, 0 client, 1 server */
    int ntags;
    char *tag_key[OBS_FILTER_MAX_TAGS];
    char *tag_value[OBS_FILTER_MAX_TAGS]; /* NULL: the key with any value */
};

/* What a WHERE clause is for: each view has the columns it needs. */
enum obs_filter_view {
    OBS_FV_CONNECTIONS, /* phases */
    OBS_FV_EXCHANGES,   /* exchange_phases */
    OBS_FV_DATAGRAMS,   /* datagram_phases */
    OBS_FV_WAITS,       /* event_waits (per process: exe and tags only) */
};

void obs_filter_init(struct obs_filter *f);
void obs_filter_free(struct obs_filter *f);

/* If argv[*i] is a filter option, takes it (and its value, advancing *i) and
 * returns 1; 0 if it is not one; -1 with err set for a bad value. */
int obs_filter_option(struct obs_filter *f, int argc, char **argv, int *i, char *err, size_t errlen);

/* The options, for --help texts. */
extern const char obs_filter_help[];

/* Appends " AND ..." conditions on the view's columns to sql (NUL-terminated,
 * of size len): 0, or -1 with err set when a filter does not apply to the view
 * or the text does not fit.  Bind the values with obs_filter_bind. */
int obs_filter_sql(const struct obs_filter *f, enum obs_filter_view v, char *sql, size_t len, char *err,
                   size_t errlen);
int obs_filter_bind(const struct obs_filter *f, sqlite3_stmt *st);

/* Prepares "HEAD WHERE 1 EXTRA <filters> TAIL" (HEAD selects from the view
 * v; EXTRA is fixed SQL such as " AND side = 'client'", or "") with the
 * filters' values bound: the statement, or NULL with err set (*usage set
 * when it is the filters that do not apply to the view). */
sqlite3_stmt *obs_filter_prepare(sqlite3 *db, const struct obs_filter *f, enum obs_filter_view v, const char *head,
                                 const char *extra, const char *tail, int *usage, char *err, size_t errlen);

/* Registers observe_in_cidr(addr, net, prefix) used by the clauses above. */
int obs_filter_register(sqlite3 *db);

/* For loading: does a process (exe path, "k=v,..." tags) pass?  Does a
 * record with this peer, side and wall-clock time pass? */
int obs_filter_run_passes(const struct obs_filter *f, const char *exe_path, const char *tags);
int obs_filter_record_passes(const struct obs_filter *f, const struct obs_addr *peer, int side, int64_t wall_ns);
int obs_filter_has_record_terms(const struct obs_filter *f);

/* Address helpers shared by the filters and their users. */
int obs_addr_parse(const char *text, struct obs_addr *a); /* IPv4 or IPv6, no port: 0 or -1 */
int obs_addr_in_net(const struct obs_addr *a, const struct obs_addr *net, int prefix);

/* "YYYY-MM-DD[THH:MM[:SS[.frac]]][Z]" (UTC) or "@SECONDS[.frac]" since the
 * epoch, to nanoseconds: 0 or -1. */
int obs_parse_wall_time(const char *text, int64_t *ns);

/* Tags "k=v,k=v": calls fn for each pair (key and value not NUL-terminated). */
void obs_tags_each(const char *tags, void (*fn)(void *ctx, const char *k, size_t kl, const char *v, size_t vl),
                   void *ctx);
/* Is KEY=VALUE (or KEY alone) a well-formed tag?  Keys: [A-Za-z0-9_.:-]+;
 * values: any bytes but the comma. */
int obs_tag_valid(const char *kv);

#endif
