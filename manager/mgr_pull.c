/* mgr_pull.c — pulling from the client hosts: one OpenSSH process per host,
 * N at a time, each with a deadline.  The remote side takes a consistent
 * snapshot with `observe-slicer snapshot DB -` (loading a log directory
 * into a temporary database first when that is what the inventory names)
 * and writes it to ssh's standard output, which goes to a private file
 * here; it is checked (mgr_merge.c) and merged as soon as it is complete.
 * A host that is down, refuses us or sends garbage is reported and the
 * others are still merged.  What a host can make us keep is bounded: its
 * snapshot by --max-mb (ssh runs under that RLIMIT_FSIZE and is killed
 * past it), its stderr by a pipe of which we keep the last 2 KiB.  ssh always runs in BatchMode (no password
 * prompt), with the host name after "--".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/obs_db.h"
#include "mgr.h"

struct job {
    const struct mgr_host *h;
    pid_t pid;              /* 0: not started or finished */
    char out[4200];
    int errfd;              /* ssh's stderr, read as it comes */
    char errtail[2048];     /* the last of it */
    size_t errlen;
    double deadline;
    int timed_out, done, ok;
    char started[32];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void utc_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* s as one word for a POSIX shell: '...' with each ' as '\''. */
static char *shell_quote(const char *s)
{
    size_t n = 3;
    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 4 : 1;
    char *q = malloc(n), *o = q;
    if (!q)
        return NULL;
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return q;
}

/* The command the remote shell runs. */
static char *remote_command(const struct mgr_host *h, const struct mgr_pull_opts *o)
{
    char *slicer = shell_quote(h->slicer ? h->slicer : o->remote_slicer ? o->remote_slicer : "observe-slicer");
    char *path = shell_quote(h->path);
    char *cmd = NULL;
    if (slicer && path) {
        if (!h->is_logs)
            cmd = sqlite3_mprintf("exec %s snapshot %s -", slicer, path);
        else
            /* load exits 1 when some logs were damaged: the rest is still worth having */
            cmd = sqlite3_mprintf("d=$(mktemp -d) || exit 1; %s load -q -o \"$d/o.db\" %s >&2; s=$?; "
                                  "if [ $s -le 1 ] && [ -f \"$d/o.db\" ]; then %s snapshot \"$d/o.db\" -; s=$?; fi; "
                                  "rm -rf \"$d\"; exit $s",
                                  slicer, path, slicer);
    }
    free(slicer);
    free(path);
    return cmd;
}

static int start_job(struct job *j, const char *tmpdir, int index, const struct mgr_pull_opts *o)
{
    const struct mgr_host *h = j->h;
    snprintf(j->out, sizeof j->out, "%s/%d.db", tmpdir, index);
    int out = open(j->out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    int pipefd[2] = { -1, -1 };
    if (pipe2(pipefd, O_CLOEXEC) == 0)
        fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    int err = pipefd[1];
    j->errfd = pipefd[0];
    j->errlen = 0;
    char *cmd = remote_command(h, o);
    char port[16], timeout[48];
    snprintf(port, sizeof port, "%d", h->port);
    snprintf(timeout, sizeof timeout, "ConnectTimeout=%d", o->timeout < 30 ? o->timeout : 30);
    const char *argv[24];
    int n = 0;
    argv[n++] = o->ssh;
    argv[n++] = "-o";
    argv[n++] = "BatchMode=yes";
    argv[n++] = "-o";
    argv[n++] = timeout;
    argv[n++] = "-o";
    argv[n++] = "ServerAliveInterval=10";
    if (o->ssh_config) {
        argv[n++] = "-F";
        argv[n++] = o->ssh_config;
    }
    if (h->port) {
        argv[n++] = "-p";
        argv[n++] = port;
    }
    if (h->user) {
        argv[n++] = "-l";
        argv[n++] = h->user;
    }
    argv[n++] = "--";
    argv[n++] = h->host;
    argv[n++] = cmd;
    argv[n] = NULL;
    utc_now(j->started, sizeof j->started);
    j->deadline = now_s() + o->timeout;
    pid_t pid = out >= 0 && err >= 0 && cmd ? fork() : -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(out, 1);
        dup2(err, 2);
        setpgid(0, 0); /* so that a timeout can stop ssh and whatever it started */
        struct rlimit fsize = { (rlim_t)o->max_bytes, (rlim_t)o->max_bytes };
        setrlimit(RLIMIT_FSIZE, &fsize); /* past it, SIGXFSZ ends ssh */
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    sqlite3_free(cmd);
    if (out >= 0)
        close(out);
    if (err >= 0)
        close(err);
    if (pid < 0) {
        if (j->errfd >= 0)
            close(j->errfd);
        j->errfd = -1;
        return -1;
    }
    j->pid = pid;
    return 0;
}

/* Reads what ssh wrote to stderr so far, keeping only the last of it. */
static void drain_stderr(struct job *j)
{
    char buf[4096];
    ssize_t n;
    while (j->errfd >= 0 && (n = read(j->errfd, buf, sizeof buf)) > 0) {
        size_t keep = sizeof j->errtail - 1;
        if ((size_t)n >= keep) {
            memcpy(j->errtail, buf + n - keep, keep);
            j->errlen = keep;
        } else {
            if (j->errlen + (size_t)n > keep) {
                size_t drop = j->errlen + (size_t)n - keep;
                memmove(j->errtail, j->errtail + drop, j->errlen - drop);
                j->errlen -= drop;
            }
            memcpy(j->errtail + j->errlen, buf, (size_t)n);
            j->errlen += (size_t)n;
        }
    }
    j->errtail[j->errlen] = '\0';
}

/* The last line ssh (or the remote side) wrote to stderr, made printable. */
static void last_error_line(struct job *j, char *buf, size_t len)
{
    drain_stderr(j);
    buf[0] = '\0';
    char *save, *line = strtok_r(j->errtail, "\r\n", &save);
    for (; line; line = strtok_r(NULL, "\r\n", &save)) {
        for (char *p = line; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        snprintf(buf, len, "%.1000s", line);
    }
}

static void record_pull(sqlite3 *db, const struct job *j, const char *message, int64_t bytes,
                        const struct mgr_merge_stats *st)
{
    char dest[600], port[16] = "", finished[32];
    if (j->h->port)
        snprintf(port, sizeof port, ":%d", j->h->port);
    snprintf(dest, sizeof dest, "%s%s%s%s", j->h->user ? j->h->user : "", j->h->user ? "@" : "", j->h->host, port);
    utc_now(finished, sizeof finished);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO pulls (host, destination, source, started_at, finished_at, ok, message, "
                           "bytes, runs, records) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &q, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(q, 1, j->h->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, dest, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, j->h->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, j->started, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, finished, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 6, j->ok);
    sqlite3_bind_text(q, 7, message, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 8, bytes);
    sqlite3_bind_int64(q, 9, st ? st->runs : 0);
    sqlite3_bind_int64(q, 10, st ? st->records : 0);
    sqlite3_step(q);
    sqlite3_finalize(q);
}

/* ssh has exited: check what came back and merge it. */
static void finish_job(sqlite3 *db, struct job *j, int status, int64_t *bytes_total)
{
    char msg[1200], why[1024];
    struct stat st;
    int64_t bytes = stat(j->out, &st) == 0 ? (int64_t)st.st_size : 0;
    struct mgr_merge_stats ms = { 0 };
    j->done = 1;
    j->pid = 0;
    if (j->timed_out) {
        snprintf(msg, sizeof msg, "timed out");
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ) {
        snprintf(msg, sizeof msg, "sent more than %lld MiB (--max-mb): refused", (long long)((bytes + (1 << 20) - 1) >> 20));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        last_error_line(j, why, sizeof why);
        snprintf(msg, sizeof msg, "ssh %s %d%s%s", WIFEXITED(status) ? "exited" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), why[0] ? ": " : "", why);
    } else if (bytes == 0) {
        last_error_line(j, why, sizeof why);
        snprintf(msg, sizeof msg, "nothing came back%s%s", why[0] ? ": " : "", why);
    } else if (mgr_check_db(j->out, why, sizeof why) != 0) {
        snprintf(msg, sizeof msg, "the database it sent is not usable: %s", why);
    } else if (mgr_merge(db, j->out, j->h->name, &ms, why, sizeof why) != 0) {
        snprintf(msg, sizeof msg, "%s", why);
    } else {
        j->ok = 1;
        snprintf(msg, sizeof msg, "merged %lld records of %lld processes (%lld bytes)", (long long)ms.records,
                 (long long)ms.runs, (long long)bytes);
    }
    *bytes_total += bytes;
    obs_text_clean(msg); /* it may quote what the host sent */
    if (j->ok)
        printf("%s: %s: %s\n", mgr_prog, j->h->name, msg);
    else
        fprintf(stderr, "%s: %s (%s): failed: %s\n", mgr_prog, j->h->name, j->h->host, msg);
    fflush(stdout);
    record_pull(db, j, msg, bytes, j->ok ? &ms : NULL);
    unlink(j->out);
    if (j->errfd >= 0)
        close(j->errfd);
    j->errfd = -1;
}

static void progress(int done, int failed, int total, int64_t bytes, int final)
{
    fprintf(stderr, "\r%s: %d/%d hosts done, %d failed, %.1f MB%s", mgr_prog, done, total, failed, bytes / 1e6,
            final ? "\n" : "");
}

/* Snapshots of a pull that was killed: the temporary directories of
 * managers (ours, named with their pid) that no longer run. */
static void remove_stale(const char *base)
{
    DIR *d = opendir(base);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        int pid, end = 0;
        struct stat st;
        char dir[4400];
        if (sscanf(e->d_name, "observe-manager.%d.%*6[A-Za-z0-9]%n", &pid, &end) != 1 || e->d_name[end] || pid <= 0)
            continue;
        if (kill(pid, 0) == 0 || errno != ESRCH)
            continue; /* that manager still runs */
        snprintf(dir, sizeof dir, "%s/%s", base, e->d_name);
        if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
            continue;
        DIR *in = opendir(dir);
        struct dirent *f;
        while (in && (f = readdir(in)) != NULL)
            if (f->d_name[0] != '.')
                unlinkat(dirfd(in), f->d_name, 0);
        if (in)
            closedir(in);
        if (rmdir(dir) == 0)
            fprintf(stderr, "%s: removed %s, left by a pull that was killed\n", mgr_prog, dir);
    }
    if (d)
        closedir(d);
}

/* SIGINT or SIGTERM: stop the pulls, remove what they left, then exit. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

int mgr_pull(sqlite3 *db, const struct mgr_inventory *inv, const struct mgr_pull_opts *o)
{
    const char *base = getenv("TMPDIR");
    char tmpdir[4096];
    base = base && *base ? base : "/tmp";
    remove_stale(base);
    snprintf(tmpdir, sizeof tmpdir, "%s/observe-manager.%d.XXXXXX", base, (int)getpid());
    struct sigaction sa = { .sa_handler = on_stop }, old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "%s: cannot make a temporary directory: %s\n", mgr_prog, strerror(errno));
        return -1;
    }
    struct job *jobs = calloc((size_t)inv->nhosts + 1, sizeof *jobs);
    int next = 0, running = 0, done = 0, failed = 0;
    int64_t bytes = 0;
    while (jobs && (next < inv->nhosts || running > 0) && !stop_signal) {
        while (running < o->jobs && next < inv->nhosts) {
            struct job *j = &jobs[next];
            j->h = &inv->hosts[next];
            if (start_job(j, tmpdir, next, o) == 0) {
                running++;
            } else {
                fprintf(stderr, "%s: %s: cannot start ssh: %s\n", mgr_prog, j->h->name, strerror(errno));
                j->done = 1;
                done++;
                failed++;
            }
            next++;
        }
        struct timespec pause = { 0, 50 * 1000 * 1000 };
        nanosleep(&pause, NULL);
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < next; i++) {
                if (jobs[i].pid == pid) {
                    if (o->progress)
                        fputs("\r\033[K", stderr);
                    finish_job(db, &jobs[i], status, &bytes);
                    running--;
                    done++;
                    failed += !jobs[i].ok;
                }
            }
        }
        for (int i = 0; i < next; i++)
            if (jobs[i].pid > 0)
                drain_stderr(&jobs[i]);
        double t = now_s();
        for (int i = 0; i < next; i++) {
            if (jobs[i].pid > 0 && !jobs[i].timed_out && t > jobs[i].deadline) {
                jobs[i].timed_out = 1;
                kill(-jobs[i].pid, SIGKILL);
                kill(jobs[i].pid, SIGKILL);
            }
        }
        if (o->progress)
            progress(done, failed, inv->nhosts, bytes, 0);
    }
    if (o->progress)
        progress(done, failed, inv->nhosts, bytes, 1);
    for (int i = 0; stop_signal && jobs && i < next; i++) {
        if (jobs[i].pid > 0) {
            kill(-jobs[i].pid, SIGKILL);
            kill(jobs[i].pid, SIGKILL);
            waitpid(jobs[i].pid, NULL, 0);
            unlink(jobs[i].out);
            close(jobs[i].errfd);
        }
    }
    free(jobs);
    rmdir(tmpdir);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (stop_signal) {
        fprintf(stderr, "%s: stopped by signal %d: the hosts not finished were not merged\n", mgr_prog,
                (int)stop_signal);
        signal(stop_signal, SIG_DFL);
        raise(stop_signal);
    }
    return failed ? 1 : 0;
}
