/* viewgen.c — expands db/views.sql into the SQL the programs carry, so that
 * what the views compute comes from one place each (run at build time:
 * viewgen < db/views.sql > build/gen/views.sql).
 *
 * A line whose text is one of these directives becomes the lines it names,
 * at its indentation; every other line is copied as it is.
 *   @periods conn ALIAS   one column per OBS_CONN_PERIODS entry
 *   @periods xchg ALIAS   one column per OBS_XCHG_PERIODS entry
 *   @server_columns RUN   server, mechanism, server_host of a peer: the
 *                         servers row of its address and port (alias s),
 *                         else of its address (sa), else the run's tags
 *   @start_columns NS     start_time (ISO 8601, UTC) and start_ns of the
 *                         wall-clock nanoseconds NS
 * The periods are those of common/obs_format.h, which the reader's dump and
 * the tests read too. */
#include <stdio.h>
#include <string.h>

#include "../common/obs_format.h"

struct period {
    const char *name, *from, *to;
};

#define VG_X_PERIOD(name, from, to, doc) { #name, #from, #to },
static const struct period conn_periods[] = { OBS_CONN_PERIODS(VG_X_PERIOD) { 0, 0, 0 } };
static const struct period xchg_periods[] = { OBS_XCHG_PERIODS(VG_X_PERIOD) { 0, 0, 0 } };

/* A time field t_X is the column d_X: ns after the row's t_ref. */
static void periods(const char *indent, const struct period *p, const char *alias)
{
    for (; p->name; p++)
        printf("%s(%s.d_%s - %s.d_%s) / 1e6 AS %s,\n", indent, alias, p->to + 2, alias, p->from + 2, p->name);
}

static void server_columns(const char *indent, const char *run)
{
    static const char *const cols[][2] = { { "label", "server" }, { "mechanism", "mechanism" },
                                           { "host", "server_host" } };
    for (int i = 0; i < 3; i++)
        printf("%sCOALESCE(s.%s, sa.%s, (SELECT value FROM run_tags WHERE run = %s.id AND key = '%s')) AS %s,\n",
               indent, cols[i][0], cols[i][0], run, cols[i][1], cols[i][1]);
}

static void start_columns(const char *indent, const char *ns)
{
    printf("%sstrftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', (%s) / 1e9, 'unixepoch') AS start_time,\n", indent, ns);
    printf("%s%s AS start_ns,\n", indent, ns);
}

int main(void)
{
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, stdin)) {
        n++;
        line[strcspn(line, "\n")] = '\0';
        size_t ind = strspn(line, " ");
        char indent[256], word[64] = "", arg1[256] = "", arg2[256] = "";
        snprintf(indent, sizeof indent, "%.*s", (int)ind, line);
        const char *text = line + ind;
        if (text[0] != '@') {
            puts(line);
            continue;
        }
        int got = sscanf(text, "@%63s %255s %255[^\n]", word, arg1, arg2);
        if (!strcmp(word, "periods") && got == 3 && !strcmp(arg1, "conn"))
            periods(indent, conn_periods, arg2);
        else if (!strcmp(word, "periods") && got == 3 && !strcmp(arg1, "xchg"))
            periods(indent, xchg_periods, arg2);
        else if (!strcmp(word, "server_columns") && got == 2)
            server_columns(indent, arg1);
        else if (!strcmp(word, "start_columns") && got >= 2)
            start_columns(indent, text + strlen("@start_columns "));
        else {
            fprintf(stderr, "viewgen: line %d: unknown directive: %s\n", n, text);
            return 1;
        }
    }
    return ferror(stdin) ? 1 : 0;
}
