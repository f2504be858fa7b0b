/* slc.h — the parts of observe-slicer: loading logs (slc_load.c), queries
 * that print (slc_query.c: summary, export; slc_metrics.c: export as
 * OpenMetrics) and the command line
 * (observe-slicer.c: dump, snapshot and the dispatch).
 */
#ifndef SLC_H
#define SLC_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/obs_filter.h"

extern const char *slc_prog;

#define SLC_MAX_ADD_TAGS 32

struct slc_load_opts {
    struct obs_filter filter;
    int nadd;
    const char *add_tag[SLC_MAX_ADD_TAGS]; /* "k=v", attached to every run loaded */
    int quiet;
    int progress; /* a progress line on stderr when the load is long */
};

struct slc_load_stats {
    uint64_t files, runs_skipped, problems;
    uint64_t records[8]; /* by enum obs_rec_type */
    uint64_t filtered;   /* records left out by the filters */
    uint64_t incomplete; /* logs whose library dropped records */
};

/* Loads every log under the paths (directories are walked for *.olog; files
 * are loaded whatever their name).  Returns 0 when everything loaded, 1
 * when some input could not be (each problem reported on stderr), -1 on a
 * database error (reported; what was committed stays). */
int slc_load(sqlite3 *db, const struct slc_load_opts *o, char *const *paths, int npaths,
             struct slc_load_stats *stats);

enum slc_format { SLC_TABLE, SLC_CSV, SLC_JSON, SLC_OPENMETRICS };

/* Which view each phase is counted over: T1, T6, T7 per connection
 * (phases), T2-T5 per request (exchange_phases).  summary and openmetrics
 * share it. */
struct slc_scope {
    const char *per, *view;
    enum obs_filter_view fv;
    int phases[4];
    int nphases;
};
#define SLC_NSCOPES 2
extern const struct slc_scope slc_scopes[SLC_NSCOPES];

/* summary: percentiles of T1–T7 per group.  by: "server", "peer", "exe" or
 * "tag:KEY".  0, or -1 (reported). */
int slc_summary(sqlite3 *db, const struct obs_filter *f, const char *by, enum slc_format fmt, FILE *out);

/* export: every row of a view (connections, exchanges, datagrams, waits). */
int slc_export(sqlite3 *db, const struct obs_filter *f, const char *what, enum slc_format fmt, FILE *out);

/* export --format openmetrics: the phases as histograms (slc_metrics.c).
 * 0, -1 (reported), -2 a filter that does not apply (reported). */
int slc_openmetrics(sqlite3 *db, const struct obs_filter *f, FILE *out);

#endif
