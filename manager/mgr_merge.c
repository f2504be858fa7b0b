/* mgr_merge.c — a database pulled from a client host is untrusted input:
 * it is checked before anything of it is used (integrity, exactly our
 * schema: the same tables and columns, the same views and indexes word for
 * word, no trigger), then merged into the manager's database under the
 * host's name.  Row ids are rebased on the manager's run ids, so pulling the
 * same host again replaces rows instead of adding them.  A host's data only
 * ever touches that host's rows: a process (run id) already merged under
 * another host's name is a collision, reported, and nothing of the database
 * is merged; the servers' labels come from the inventory alone, never from
 * a pulled database.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "../common/obs_db.h"
#include "mgr.h"

#define MGR_UNITS_MASK "17179869183" /* (1 << 34) - 1: the offset part of a record id */

/* Every row of a query as one text ("a|b\n..."), for comparing schemas. */
static char *rows_text(sqlite3 *db, const char *sql, const char *param)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    if (param)
        sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
    char *out = sqlite3_mprintf("");
    while (out && sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st) && out; c++) {
            const char *v = (const char *)sqlite3_column_text(st, c);
            char *next = sqlite3_mprintf("%s%s%s", out, c ? "|" : "", v ? v : "NULL");
            sqlite3_free(out);
            out = next;
        }
        if (out) {
            char *next = sqlite3_mprintf("%s\n", out);
            sqlite3_free(out);
            out = next;
        }
    }
    sqlite3_finalize(st);
    return out;
}

/* Compares the pulled schema with the one this program makes. */
static int same_schema(sqlite3 *db, sqlite3 *ref, char *err, size_t errlen)
{
    static const char objects[] = "SELECT type, name FROM sqlite_schema ORDER BY type, name";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT type, name, sql FROM sqlite_schema ORDER BY type, name", -1, &st, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot read its schema: %s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(st, 0), *name = (const char *)sqlite3_column_text(st, 1);
        const char *sql = (const char *)sqlite3_column_text(st, 2);
        if (!type || !name) {
            snprintf(err, errlen, "a schema entry without a name");
            rc = -1;
            break;
        }
        if (strcmp(type, "trigger") == 0) {
            snprintf(err, errlen, "it has a trigger ('%.100s'): refused", name);
            rc = -1;
            break;
        }
        sqlite3_stmt *q;
        sqlite3_prepare_v2(ref, "SELECT sql FROM sqlite_schema WHERE type = ? AND name = ?", -1, &q, NULL);
        sqlite3_bind_text(q, 1, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
        int known = sqlite3_step(q) == SQLITE_ROW;
        const char *ref_sql = known ? (const char *)sqlite3_column_text(q, 0) : NULL;
        if (!known) {
            snprintf(err, errlen, "it has an unexpected %.20s ('%.100s'): refused", type, name);
            rc = -1;
        } else if (strcmp(type, "table") != 0 && (!sql) != (!ref_sql)) {
            snprintf(err, errlen, "its %.20s '%.100s' is not ours: refused", type, name);
            rc = -1;
        } else if (strcmp(type, "table") != 0 && sql && strcmp(sql, ref_sql) != 0) {
            snprintf(err, errlen, "its %.20s '%.100s' differs from ours: refused", type, name);
            rc = -1;
        } else if (strcmp(type, "table") == 0) {
            /* tables are compared by their columns: a migrated database
             * has other CREATE text for the same table */
            static const char cols[] = "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)";
            char *a = rows_text(db, cols, name), *b = rows_text(ref, cols, name);
            if (!a || !b || strcmp(a, b) != 0) {
                snprintf(err, errlen, "its table '%.100s' has other columns than ours: refused", name);
                rc = -1;
            }
            sqlite3_free(a);
            sqlite3_free(b);
        }
        sqlite3_finalize(q);
    }
    sqlite3_finalize(st);
    if (rc == 0) {
        char *a = rows_text(db, objects, NULL), *b = rows_text(ref, objects, NULL);
        if (!a || !b || strcmp(a, b) != 0) {
            snprintf(err, errlen, "some of our tables or views are missing: refused");
            rc = -1;
        }
        sqlite3_free(a);
        sqlite3_free(b);
    }
    return rc;
}

/* Every column our schema declares INTEGER holds integers (or NULL): a
 * real log never gives anything else, and a 1e308 or a text there would
 * pass into every host's plots.  Our schema has no other numeric type.
 * One scan per table counts the misfits of all its columns at once. */
static int table_integers(sqlite3 *db, const char *table, char **cols, int ncols, char *err, size_t errlen)
{
    char *sql = sqlite3_mprintf("SELECT 0");
    for (int i = 0; i < ncols && sql; i++) {
        char *more = sqlite3_mprintf("%s, total(typeof(\"%w\") NOT IN ('integer', 'null'))", sql, cols[i]);
        sqlite3_free(sql);
        sql = more;
    }
    char *full = sql ? sqlite3_mprintf("%s FROM \"%w\"", sql, table) : NULL;
    sqlite3_free(sql);
    sqlite3_stmt *st;
    int rc = 0;
    if (full && sqlite3_prepare_v2(db, full, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            for (int i = 0; i < ncols && rc == 0; i++) {
                long long bad = (long long)sqlite3_column_double(st, i + 1);
                if (bad > 0) {
                    snprintf(err, errlen, "%lld values of %.60s.%.60s are not integers, as no log can give: refused", bad,
                             table, cols[i]);
                    rc = -1;
                }
            }
        }
        sqlite3_finalize(st);
    } else {
        snprintf(err, errlen, "cannot read %.60s: %s", table, sqlite3_errmsg(db));
        rc = -1;
    }
    sqlite3_free(full);
    return rc;
}

static int only_integers(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *cols;
    if (sqlite3_prepare_v2(db,
                           "SELECT m.name, c.name FROM sqlite_schema m, pragma_table_info(m.name) c "
                           "WHERE m.type = 'table' AND c.type = 'INTEGER' ORDER BY m.name",
                           -1, &cols, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot read its columns: %s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = 0, n = 0;
    char table[256] = "", *names[64];
    for (;;) {
        int row = sqlite3_step(cols) == SQLITE_ROW;
        const char *t = row ? (const char *)sqlite3_column_text(cols, 0) : NULL;
        if (n > 0 && (!row || strcmp(t, table) != 0 || n == 64)) {
            rc = table_integers(db, table, names, n, err, errlen);
            while (n > 0)
                sqlite3_free(names[--n]);
        }
        if (!row || rc != 0)
            break;
        snprintf(table, sizeof table, "%s", t);
        names[n++] = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(cols, 1));
    }
    while (n > 0)
        sqlite3_free(names[--n]);
    sqlite3_finalize(cols);
    return rc;
}

int mgr_check_db(const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL, *ref = NULL;
    char why[1024];
    if (obs_db_open(path, OBS_DB_READ, &db, why, sizeof why) != 0) {
        /* the message names our temporary file; say only what is wrong */
        const char *colon = strstr(why, ": ");
        snprintf(err, errlen, "%s", colon ? colon + 2 : why);
        return -1;
    }
    int rc = -1;
    obs_db_exec(db, "PRAGMA cell_size_check = ON; PRAGMA mmap_size = 0", why, sizeof why);
    char *ok = rows_text(db, "PRAGMA integrity_check(20)", NULL);
    if (!ok || strcmp(ok, "ok\n") != 0) {
        snprintf(err, errlen, "it fails SQLite's integrity check: %.300s", ok ? ok : sqlite3_errmsg(db));
        sqlite3_free(ok);
        goto out;
    }
    sqlite3_free(ok);
    /* ours are UTF-8; another encoding could not even be attached to merge */
    char *enc = rows_text(db, "PRAGMA encoding", NULL);
    if (!enc || strcmp(enc, "UTF-8\n") != 0) {
        if (enc && strchr(enc, '\n'))
            *strchr(enc, '\n') = '\0';
        snprintf(err, errlen, "its text encoding is %.20s, not UTF-8: refused", enc ? enc : "unknown");
        sqlite3_free(enc);
        goto out;
    }
    sqlite3_free(enc);
    if (sqlite3_open_v2(":memory:", &ref, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        obs_db_exec(ref, obs_db_schema_sql, why, sizeof why) != 0 || obs_db_exec(ref, obs_db_views_sql, why, sizeof why) != 0) {
        snprintf(err, errlen, "cannot make the reference schema");
        goto out;
    }
    rc = same_schema(db, ref, err, errlen);
    if (rc == 0)
        rc = only_integers(db, err, errlen);
out:
    sqlite3_close(ref);
    sqlite3_close(db);
    return rc;
}

/* ---- merging ---------------------------------------------------------------- */

/* What each record table's key columns become in the manager's database. */
static const char *column_expr(const char *table, const char *col, char *buf, size_t len)
{
    int keyed = strcmp(table, "run_tags") != 0 && strcmp(table, "wait_aggs") != 0;
    if (keyed && (strcmp(col, "id") == 0 || strcmp(col, "conn") == 0 || strcmp(col, "sock") == 0))
        snprintf(buf, len, "(m.dst << 34) | (t.\"%s\" & " MGR_UNITS_MASK ")", col);
    else if (strcmp(col, "run") == 0)
        snprintf(buf, len, "m.dst");
    else
        snprintf(buf, len, "t.\"%s\"", col);
    return buf;
}

/* INSERT OR REPLACE every row of src.table, rebased on the manager's runs. */
static int merge_table(sqlite3 *db, const char *table, int64_t *changes, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1)", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    char cols[2048] = "", exprs[8192] = "", buf[256];
    int has_run = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(st, 0);
        has_run |= strcmp(c, "run") == 0;
        size_t cl = strlen(cols), el = strlen(exprs);
        snprintf(cols + cl, sizeof cols - cl, "%s\"%s\"", cl ? ", " : "", c);
        snprintf(exprs + el, sizeof exprs - el, "%s%s", el ? ", " : "", column_expr(table, c, buf, sizeof buf));
    }
    sqlite3_finalize(st);
    /* exchanges and datagrams name their run only in their id */
    char *sql = sqlite3_mprintf("INSERT OR REPLACE INTO main.\"%w\" (%s) SELECT %s FROM src.\"%w\" t "
                                "JOIN temp.mgr_map m ON m.src = %s",
                                table, cols, exprs, table, has_run ? "t.run" : "(t.id >> 34)");
    int rc = obs_db_exec(db, sql, err, errlen);
    sqlite3_free(sql);
    if (rc == 0 && changes)
        *changes += sqlite3_changes(db);
    return rc;
}

/* The runs: inserted, or updated (counters, the host's name) if known. */
static int merge_runs(sqlite3 *db, const char *host, int64_t *runs, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    char cols[2048] = "", exprs[4096] = "", sets[4096] = "";
    if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('runs') WHERE name != 'id'", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(st, 0);
        size_t cl = strlen(cols), el = strlen(exprs), sl = strlen(sets);
        snprintf(cols + cl, sizeof cols - cl, "%s\"%s\"", cl ? ", " : "", c);
        const char *e = strcmp(c, "client_host") == 0 ? ":host"
                        : strcmp(c, "hostname") == 0  ? "coalesce(hostname, client_host)"
                                                      : NULL;
        if (e)
            snprintf(exprs + el, sizeof exprs - el, "%s%s", el ? ", " : "", e);
        else
            snprintf(exprs + el, sizeof exprs - el, "%s\"%s\"", el ? ", " : "", c);
        if (strcmp(c, "run_id") != 0)
            snprintf(sets + sl, sizeof sets - sl, "%s\"%s\" = excluded.\"%s\"", sl ? ", " : "", c, c);
    }
    sqlite3_finalize(st);
    char *sql = sqlite3_mprintf("INSERT INTO main.runs (%s) SELECT %s FROM src.runs WHERE true "
                                "ON CONFLICT(run_id) DO UPDATE SET %s",
                                cols, exprs, sets);
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    sqlite3_free(sql);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":host"), host, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        *runs = sqlite3_changes(db);
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "merging processes: %s", sqlite3_errmsg(db));
        return -1;
    }
    return obs_db_exec(db,
                       "DROP TABLE IF EXISTS temp.mgr_map;"
                       "CREATE TEMP TABLE mgr_map (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL);"
                       "INSERT INTO temp.mgr_map SELECT s.id, r.id FROM src.runs s JOIN main.runs r ON r.run_id = s.run_id",
                       err, errlen);
}

/* 0 if none of the pulled processes is already another host's. */
static int no_collision(sqlite3 *db, const char *host, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*), min(r.client_host) FROM src.runs s JOIN main.runs r ON r.run_id = s.run_id "
                           "WHERE r.client_host IS NOT ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
    if (rc == 0 && sqlite3_column_int64(st, 0) > 0) {
        snprintf(err, errlen, "%lld of its processes have run ids already merged from host '%.200s': refused",
                 (long long)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1));
        rc = -1;
    } else if (rc != 0) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
}

int mgr_merge(sqlite3 *db, const char *path, const char *host, struct mgr_merge_stats *stats, char *err,
              size_t errlen)
{
    static const char *const records[] = { "conns", "xchgs", "udp_socks", "dgrams", "waits", NULL };
    char why[1024];
    memset(stats, 0, sizeof *stats);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "ATTACH ?1 AS src", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    if (rc != 0) {
        snprintf(err, errlen, "cannot attach the pulled database: %s", sqlite3_errmsg(db));
        return -1;
    }
    rc = obs_db_exec(db, "BEGIN IMMEDIATE", why, sizeof why);
    if (rc == 0)
        rc = no_collision(db, host, why, sizeof why);
    if (rc == 0)
        rc = merge_runs(db, host, &stats->runs, why, sizeof why);
    if (rc == 0)
        rc = merge_table(db, "run_tags", NULL, why, sizeof why);
    if (rc == 0)
        rc = merge_table(db, "wait_aggs", NULL, why, sizeof why);
    for (int i = 0; records[i] && rc == 0; i++)
        rc = merge_table(db, records[i], &stats->records, why, sizeof why);
    if (rc == 0) /* the runs' tag text, as the merged tags make it */
        rc = obs_db_exec(db,
                         "UPDATE main.runs SET tags = (SELECT coalesce(group_concat(key || '=' || value, ','), '') "
                         "FROM (SELECT key, value FROM main.run_tags WHERE run = runs.id ORDER BY key)) "
                         "WHERE id IN (SELECT dst FROM temp.mgr_map)",
                         why, sizeof why);
    if (rc == 0)
        rc = obs_db_exec(db, "COMMIT", why, sizeof why);
    if (rc != 0) {
        snprintf(err, errlen, "merging: %s", why);
        obs_db_exec(db, "ROLLBACK", why, sizeof why);
    }
    obs_db_exec(db, "DROP TABLE IF EXISTS temp.mgr_map", why, sizeof why);
    obs_db_exec(db, "DETACH src", why, sizeof why);
    return rc;
}

int mgr_store_servers(sqlite3 *db, const struct mgr_inventory *inv, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO servers VALUES (?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < inv->nservers && rc == 0; i++) {
        const struct mgr_server *s = &inv->servers[i];
        sqlite3_bind_text(st, 1, s->addr, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, s->port);
        sqlite3_bind_text(st, 3, s->label, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, s->host, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, s->mechanism, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            snprintf(err, errlen, "recording servers: %s", sqlite3_errmsg(db));
            rc = -1;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}
