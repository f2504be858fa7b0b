/* spawn — whole-process wall time of a command, plain vs with an extra
 * environment, alternated run by run so that machine noise hits both
 * sides: what a shell script or a load tool that starts many short
 * processes feels.  Prints the median of each side, the median of the
 * paired differences and the ratio of the totals.
 *   spawn RUNS VAR=VALUE[,VAR=VALUE...] -- COMMAND [ARG...]
 * Each run's stdout and stderr go to /dev/null. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One run: its wall time in microseconds, or -1. */
static double run(char **argv, char **env, posix_spawn_file_actions_t *fa)
{
    pid_t pid;
    double t0 = now_us();
    if (posix_spawnp(&pid, argv[0], fa, NULL, argv, env) != 0)
        return -1;
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return now_us() - t0;
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[3], "--") != 0 || atoi(argv[1]) < 1) {
        fprintf(stderr, "usage: spawn RUNS VAR=VALUE[,VAR=VALUE...] -- COMMAND [ARG...]\n");
        return 2;
    }
    int runs = atoi(argv[1]);
    /* the observed side's environment: ours plus the given variables */
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 64, sizeof *env);
    char *extra = strdup(argv[2]);
    size_t k = 0;
    for (char *v = strtok(extra, ","); v && k < 63; v = strtok(NULL, ","))
        env[k++] = v;
    for (size_t i = 0; i < n; i++)
        env[k++] = environ[i];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    double *a = calloc((size_t)runs, sizeof *a), *b = calloc((size_t)runs, sizeof *b), *d = calloc((size_t)runs, sizeof *d);
    double sum_a = 0, sum_b = 0;
    for (int i = 0; i < runs; i++) {
        a[i] = run(argv + 4, environ, &fa);
        b[i] = run(argv + 4, env, &fa);
        if (a[i] < 0 || b[i] < 0) {
            fprintf(stderr, "spawn: %s failed or could not be run\n", argv[4]);
            return 1;
        }
        d[i] = b[i] - a[i];
        sum_a += a[i];
        sum_b += b[i];
    }
    printf("plain_us=%.1f observed_us=%.1f added_us=%.1f total_ratio=%.4f\n", median(a, runs), median(b, runs),
           median(d, runs), sum_b / sum_a);
    return 0;
}
