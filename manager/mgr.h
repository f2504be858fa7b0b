/* mgr.h — the parts of observe-manager:
 *   mgr_inventory.c  the inventory file and host specs from the command line;
 *   mgr_pull.c       ssh to each client host, N at a time, for a snapshot;
 *   mgr_merge.c      checking a pulled (untrusted) database, merging it;
 *   mgr_plot.c       data files and gnuplot for the plots;
 *   mgr_report.c     the HTML report;
 *   observe-manager.c the command line.
 */
#ifndef MGR_H
#define MGR_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/obs_filter.h"
#include "../common/obs_stats.h"

extern const char *mgr_prog;

/* A client host to pull from. */
struct mgr_host {
    char *name;        /* the inventory's name: [A-Za-z0-9_.:-]+ */
    char *user;        /* NULL: ssh's default (or the ssh config's) */
    char *host;        /* address or name for ssh, never beginning with '-' */
    int port;          /* 0: ssh's default */
    char *path;        /* remote database, or log directory */
    int is_logs;       /* path is a log directory: load it there first */
    char *slicer;      /* remote observe-slicer; NULL: found on the remote PATH */
};

/* A server, by address: what the plots call it. */
struct mgr_server {
    char *addr;
    int port;          /* 0: any port of addr */
    char *label, *host, *mechanism;
};

struct mgr_inventory {
    struct mgr_host *hosts;
    int nhosts;
    struct mgr_server *servers;
    int nservers;
};

/* Reads an inventory file: the number of bad lines (each reported on
 * stderr and skipped), or -1 with err set when the file cannot be read. */
int mgr_inventory_read(struct mgr_inventory *inv, const char *path, char *err, size_t errlen);
/* Adds a host given as NAME=[USER@]HOST[:PORT]:/PATH: 0, or -1 with err. */
int mgr_inventory_add_spec(struct mgr_inventory *inv, const char *spec, char *err, size_t errlen);
void mgr_inventory_free(struct mgr_inventory *inv);

struct mgr_pull_opts {
    int jobs;              /* hosts pulled at once */
    int timeout;           /* seconds per host */
    const char *ssh_config; /* -F, or NULL */
    const char *remote_slicer; /* default remote observe-slicer */
    const char *ssh;       /* the ssh program (OBSERVE_SSH, default "ssh") */
    int progress;          /* a progress line on stderr */
    long long max_bytes;   /* the most a host may send (--max-mb) */
};

/* Pulls every host and merges what came back into db: 0 all succeeded, 1
 * some failed (each reported), -1 the manager's own database failed. */
int mgr_pull(sqlite3 *db, const struct mgr_inventory *inv, const struct mgr_pull_opts *o);

/* Checks a pulled database file (untrusted): 0, or -1 with err saying why. */
int mgr_check_db(const char *path, char *err, size_t errlen);


struct mgr_merge_stats {
    int64_t runs, records;
};

/* Merges a checked database file into db under the host's name. */
int mgr_merge(sqlite3 *db, const char *path, const char *host, struct mgr_merge_stats *st, char *err,
              size_t errlen);

/* Records the inventory's servers (labels, hosts, mechanisms). */
int mgr_store_servers(sqlite3 *db, const struct mgr_inventory *inv, char *err, size_t errlen);

struct mgr_plot_opts {
    struct obs_filter filter;
    const char *outdir;
    int outfd;             /* outdir, opened and checked (mgr_open_outdir): every file goes through it */
    int nxtags;
    const char *xtags[8];  /* numeric tags to plot latency against */
    const char *rate_tag;  /* the tag that holds the request rate */
    const char *notes;     /* report: a text file of findings to show first */
};

/* The connections of one server (label and mechanism), T1-T7 each. */
struct mgr_group {
    char *label, *mechanism, *host;
    struct obs_values t[7];
    struct obs_stats s[7];
};

struct mgr_groups {
    struct mgr_group *g;
    int n;
};

/* Client-side connections per server, with their statistics. */
int mgr_server_groups(sqlite3 *db, const struct mgr_plot_opts *o, struct mgr_groups *out);
void mgr_groups_free(struct mgr_groups *gs);

struct mgr_plots {
    int n;
    struct {
        char name[80];   /* NAME.png and NAME.svg in the output directory */
        char title[200];
    } plot[32];
};

/* Makes and opens the output directory: it must be ours and writable by no
 * one else, since gnuplot follows links and blocks on FIFOs that another
 * user could plant there.  Its fd, or -1 (reported). */
int mgr_open_outdir(const char *dir);

/* Writes the plots (PNG and SVG) into o->outdir: 0, or -1 (reported). */
int mgr_plot(sqlite3 *db, const struct mgr_plot_opts *o, struct mgr_plots *made);

/* Writes report.html (and the plots) into o->outdir. */
int mgr_report(sqlite3 *db, const struct mgr_plot_opts *o, const char *dbpath);

/* Text that goes into files other programs read: HTML-escaped, or made
 * safe for a gnuplot data file (no tabs, newlines or quotes). */
void mgr_html(FILE *f, const char *s);
void mgr_data_label(char *dst, size_t len, const char *s);

#endif
