/* unit_stats.c — the summary statistics every program reports (common/obs_stats.c). */
#include <math.h>

#include "../../common/obs_stats.h"
#include "unit.h"

static int near(double a, double b) { return fabs(a - b) < 1e-9; }

UNIT(percentiles_interpolate_between_the_closest_ranks)
{
    struct obs_values v = { 0 };
    for (int i = 100; i >= 1; i--) /* given out of order */
        CHECK(obs_values_push(&v, i) == 0);
    struct obs_stats s = obs_stats_of(&v);
    CHECK(s.count == 100 && near(s.min, 1) && near(s.max, 100) && near(s.mean, 50.5));
    CHECK(near(s.median, 50.5));
    CHECK(near(s.p90, 90.1) && near(s.p99, 99.01));
    CHECK(near(obs_percentile(v.v, v.n, 0), 1) && near(obs_percentile(v.v, v.n, 1), 100));
    obs_values_free(&v);
}

UNIT(one_value_and_none)
{
    struct obs_values v = { 0 };
    CHECK(obs_stats_of(&v).count == 0);
    obs_values_push(&v, 7.5);
    struct obs_stats s = obs_stats_of(&v);
    CHECK(s.count == 1 && near(s.min, 7.5) && near(s.median, 7.5) && near(s.p99, 7.5) && near(s.max, 7.5));
    obs_values_free(&v);
}
