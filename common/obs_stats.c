/* obs_stats.c — summary statistics (obs_stats.h). */
#include "obs_stats.h"

#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double obs_percentile(const double *sorted, size_t n, double p)
{
    double pos = p * (double)(n - 1);
    size_t lo = (size_t)pos;
    if (lo + 1 >= n)
        return sorted[n - 1];
    return sorted[lo] + (sorted[lo + 1] - sorted[lo]) * (pos - (double)lo);
}

struct obs_stats obs_stats_of(struct obs_values *vals)
{
    struct obs_stats s = { .count = vals->n };
    if (!vals->n)
        return s;
    qsort(vals->v, vals->n, sizeof *vals->v, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < vals->n; i++)
        sum += vals->v[i];
    s.min = vals->v[0];
    s.max = vals->v[vals->n - 1];
    s.median = obs_percentile(vals->v, vals->n, 0.5);
    s.p90 = obs_percentile(vals->v, vals->n, 0.9);
    s.p99 = obs_percentile(vals->v, vals->n, 0.99);
    s.mean = sum / (double)vals->n;
    return s;
}

int obs_values_push(struct obs_values *vals, double v)
{
    if (vals->n == vals->cap) {
        size_t cap = vals->cap ? vals->cap * 2 : 1024;
        double *p = realloc(vals->v, cap * sizeof *p);
        if (!p)
            return -1;
        vals->v = p;
        vals->cap = cap;
    }
    vals->v[vals->n++] = v;
    return 0;
}

void obs_values_free(struct obs_values *vals)
{
    free(vals->v);
    vals->v = NULL;
    vals->n = vals->cap = 0;
}
