/* mgr_inventory.c — the inventory: which client hosts to pull from and what
 * the servers are (see manager/inventory.example for the format).
 *
 * Everything here ends up in an ssh command line or in the database, so it
 * is checked strictly: names and hosts are plain tokens that can never be
 * taken for an option (no leading '-') or for shell syntax; paths are
 * absolute and quoted for the remote shell when used (mgr_pull.c).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mgr.h"

static int token_ok(const char *s, const char *extra)
{
    if (!*s || *s == '-')
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
            return 0;
    return 1;
}

static int port_of(const char *s)
{
    char *end;
    long p = strtol(s, &end, 10);
    return *s && !*end && p > 0 && p <= 65535 ? (int)p : -1;
}

/* [USER@]HOST[:PORT], HOST an IPv6 address in brackets if it has colons. */
static int parse_destination(struct mgr_host *h, const char *dest, char *err, size_t errlen)
{
    char *d = strdup(dest), *at = strrchr(d, '@'), *host = d, *colon;
    if (at) {
        *at = '\0';
        host = at + 1;
        if (!token_ok(d, "_.-")) {
            snprintf(err, errlen, "bad user name '%s'", d);
            free(d);
            return -1;
        }
        h->user = strdup(d);
    }
    if (*host == '[') {
        char *close = strchr(host, ']');
        if (!close) {
            snprintf(err, errlen, "bad host '%s' (no closing ']')", host);
            free(d);
            return -1;
        }
        *close = '\0';
        colon = close[1] == ':' ? close + 1 : NULL;
        if (close[1] && !colon) {
            snprintf(err, errlen, "bad destination '%s'", dest);
            free(d);
            return -1;
        }
        host++;
    } else {
        colon = strchr(host, ':');
    }
    if (colon) {
        *colon = '\0';
        if ((h->port = port_of(colon + 1)) < 0) {
            snprintf(err, errlen, "bad port '%s'", colon + 1);
            free(d);
            return -1;
        }
    }
    if (!token_ok(host, "_.:-")) {
        snprintf(err, errlen, "bad host '%s' (letters, digits, '_', '.', ':', '-'; not beginning with '-')", host);
        free(d);
        return -1;
    }
    h->host = strdup(host);
    free(d);
    return 0;
}

static int path_ok(const char *p)
{
    if (*p != '/')
        return 0;
    for (; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

static int add_host(struct mgr_inventory *inv, struct mgr_host *h, char *err, size_t errlen)
{
    for (int i = 0; i < inv->nhosts; i++) {
        if (strcmp(inv->hosts[i].name, h->name) == 0) {
            snprintf(err, errlen, "client host '%s' named twice", h->name);
            return -1;
        }
    }
    struct mgr_host *n = realloc(inv->hosts, (size_t)(inv->nhosts + 1) * sizeof *n);
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    inv->hosts = n;
    inv->hosts[inv->nhosts++] = *h;
    return 0;
}

static void host_free(struct mgr_host *h)
{
    free(h->name);
    free(h->user);
    free(h->host);
    free(h->path);
    free(h->slicer);
}

/* client NAME DEST db=PATH|logs=PATH [slicer=PATH] */
static int parse_client(struct mgr_inventory *inv, char **f, int n, char *err, size_t errlen)
{
    struct mgr_host h = { 0 };
    if (n < 4) {
        snprintf(err, errlen, "want: client NAME [USER@]HOST[:PORT] db=PATH|logs=PATH [slicer=PATH]");
        return -1;
    }
    if (!token_ok(f[1], "_.:-")) {
        snprintf(err, errlen, "bad client name '%s'", f[1]);
        return -1;
    }
    h.name = strdup(f[1]);
    if (parse_destination(&h, f[2], err, errlen) != 0)
        goto fail;
    for (int i = 3; i < n; i++) {
        char *eq = strchr(f[i], '=');
        const char *v = eq ? eq + 1 : "";
        size_t kl = eq ? (size_t)(eq - f[i]) : strlen(f[i]);
        int is_db = kl == 2 && !strncmp(f[i], "db", 2), is_logs = kl == 4 && !strncmp(f[i], "logs", 4);
        int is_slicer = kl == 6 && !strncmp(f[i], "slicer", 6);
        if (!eq || !(is_db || is_logs || is_slicer)) {
            snprintf(err, errlen, "unknown field '%s' (db=, logs= or slicer=)", f[i]);
            goto fail;
        }
        if (!path_ok(v)) {
            snprintf(err, errlen, "bad path '%s' (absolute, no control characters)", v);
            goto fail;
        }
        if (is_slicer) {
            free(h.slicer);
            h.slicer = strdup(v);
        } else {
            if (h.path) {
                snprintf(err, errlen, "give one of db= and logs=");
                goto fail;
            }
            h.path = strdup(v);
            h.is_logs = is_logs;
        }
    }
    if (!h.path) {
        snprintf(err, errlen, "client '%s' needs db=PATH or logs=PATH", h.name);
        goto fail;
    }
    if (add_host(inv, &h, err, errlen) == 0)
        return 0;
fail:
    host_free(&h);
    return -1;
}

/* server ADDR[:PORT] LABEL [host=NAME] [mechanism=NAME] */
static int parse_server(struct mgr_inventory *inv, char **f, int n, char *err, size_t errlen)
{
    if (n < 3) {
        snprintf(err, errlen, "want: server ADDR[:PORT] LABEL [host=NAME] [mechanism=NAME]");
        return -1;
    }
    struct mgr_server s = { 0 };
    char *a = strdup(f[1]), *addr = a, *colon;
    if (*a == '[') {
        char *close = strchr(a, ']');
        colon = close && close[1] == ':' ? close + 1 : NULL;
        if (close)
            *close = '\0';
        addr = a + 1;
    } else {
        colon = strchr(a, ':');
    }
    if (colon) {
        *colon = '\0';
        s.port = port_of(colon + 1);
    }
    struct obs_addr parsed;
    if (obs_addr_parse(addr, &parsed) != 0 || s.port < 0) {
        snprintf(err, errlen, "bad server address '%s' (IPv4 or [IPv6], with an optional :PORT)", f[1]);
        free(a);
        return -1;
    }
    s.addr = strdup(addr);
    free(a);
    s.label = strdup(f[2]);
    for (int i = 3; i < n; i++) {
        if (!strncmp(f[i], "host=", 5) && f[i][5]) {
            free(s.host);
            s.host = strdup(f[i] + 5);
        } else if (!strncmp(f[i], "mechanism=", 10) && f[i][10]) {
            free(s.mechanism);
            s.mechanism = strdup(f[i] + 10);
        } else {
            snprintf(err, errlen, "unknown field '%s' (host= or mechanism=)", f[i]);
            free(s.addr);
            free(s.label);
            free(s.host);
            free(s.mechanism);
            return -1;
        }
    }
    struct mgr_server *m = realloc(inv->servers, (size_t)(inv->nservers + 1) * sizeof *m);
    if (!m)
        return -1;
    inv->servers = m;
    inv->servers[inv->nservers++] = s;
    return 0;
}

int mgr_inventory_read(struct mgr_inventory *inv, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096], why[512];
    int lineno = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        int rc = 0;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(why, sizeof why, "line too long");
            rc = -1;
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
        } else {
            char *fields[16], *save = NULL;
            int n = 0;
            for (char *t = strtok_r(line, " \t\r\n", &save); t && n < 16; t = strtok_r(NULL, " \t\r\n", &save))
                fields[n++] = t;
            if (n == 0 || fields[0][0] == '#')
                continue;
            if (strcmp(fields[0], "client") == 0)
                rc = parse_client(inv, fields, n, why, sizeof why);
            else if (strcmp(fields[0], "server") == 0)
                rc = parse_server(inv, fields, n, why, sizeof why);
            else {
                snprintf(why, sizeof why, "unknown line '%.100s' (client or server)", fields[0]);
                rc = -1;
            }
        }
        if (rc != 0) {
            fprintf(stderr, "%s: %s:%d: %s: line skipped\n", mgr_prog, path, lineno, why);
            bad++;
        }
    }
    fclose(f);
    return bad;
}

int mgr_inventory_add_spec(struct mgr_inventory *inv, const char *spec, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '='), *slash = eq ? strstr(eq, ":/") : NULL;
    if (!eq || !slash || eq == spec) {
        snprintf(err, errlen, "bad host '%s' (want NAME=[USER@]HOST[:PORT]:/PATH)", spec);
        return -1;
    }
    char *name = strndup(spec, (size_t)(eq - spec)), *dest = strndup(eq + 1, (size_t)(slash - eq - 1));
    const char *path = slash + 1;
    size_t pl = strlen(path);
    int is_logs = !(pl > 3 && strcmp(path + pl - 3, ".db") == 0);
    char *fields[] = { "client", name, dest, NULL };
    char kv[4200];
    snprintf(kv, sizeof kv, "%s=%s", is_logs ? "logs" : "db", path);
    fields[3] = kv;
    int rc = parse_client(inv, fields, 4, err, errlen);
    free(name);
    free(dest);
    return rc;
}

void mgr_inventory_free(struct mgr_inventory *inv)
{
    for (int i = 0; i < inv->nhosts; i++)
        host_free(&inv->hosts[i]);
    for (int i = 0; i < inv->nservers; i++) {
        free(inv->servers[i].addr);
        free(inv->servers[i].label);
        free(inv->servers[i].host);
        free(inv->servers[i].mechanism);
    }
    free(inv->hosts);
    free(inv->servers);
    memset(inv, 0, sizeof *inv);
}
