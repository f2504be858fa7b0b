/* obs_stats.h — the summary statistics every observe program reports the
 * same way (observe-slicer summary, observe-manager's plots and report):
 * count, min, median, p90, p99, max and mean of a set of values, with
 * percentiles interpolated linearly between the closest ranks.
 */
#ifndef OBS_STATS_H
#define OBS_STATS_H

#include <stddef.h>

struct obs_values {
    double *v;
    size_t n, cap;
};

struct obs_stats {
    size_t count;
    double min, median, p90, p99, max, mean;
};

/* Adds a value: 0, or -1 out of memory. */
int obs_values_push(struct obs_values *vals, double v);

/* Sorts the values (in place) and summarises them; count 0 when empty. */
struct obs_stats obs_stats_of(struct obs_values *vals);

/* The p-quantile (0..1) of sorted values. */
double obs_percentile(const double *sorted, size_t n, double p);

void obs_values_free(struct obs_values *vals);

#endif
