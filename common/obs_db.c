/* obs_db.c — opening, creating and migrating observe databases (obs_db.h). */
#define _GNU_SOURCE
#include "obs_db.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "obs_db_sql.h" /* generated from db/schema.sql and db/migrate-N.sql */

int obs_db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int obs_db_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Is this a database with no objects at all (a new file)? */
static int obs_db_empty(sqlite3 *db)
{
    sqlite3_stmt *st;
    int empty = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        empty = sqlite3_column_int(st, 0) == 0;
    sqlite3_finalize(st);
    return empty;
}

/* Drops every view and makes the current ones (after a migration). */
static int obs_db_remake_views(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_schema WHERE type = 'view'", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        char *drop = sqlite3_mprintf("DROP VIEW \"%w\"", (const char *)sqlite3_column_text(st, 0));
        rc = drop ? obs_db_exec(db, drop, err, errlen) : -1;
        sqlite3_free(drop);
    }
    sqlite3_finalize(st);
    return rc == 0 ? obs_db_exec(db, obs_db_views_sql, err, errlen) : -1;
}

/* Creates or migrates the schema inside one write transaction, so that two
 * programs opening a new database at once do it exactly once. */
static int obs_db_prepare_schema(sqlite3 *db, char *err, size_t errlen)
{
    char why[160];
    if (obs_db_exec(db, "BEGIN IMMEDIATE", why, sizeof why) != 0) {
        snprintf(err, errlen, "cannot lock: %s", why);
        return -1;
    }
    int version = obs_db_version(db), empty = obs_db_empty(db), rc = 0;
    char set[64];
    snprintf(set, sizeof set, "PRAGMA user_version = %d", OBS_DB_VERSION);
    if (version == 0 && empty == 1) {
        rc = obs_db_exec(db, obs_db_schema_sql, why, sizeof why);
        if (rc == 0)
            rc = obs_db_exec(db, obs_db_views_sql, why, sizeof why);
        if (rc == 0)
            rc = obs_db_exec(db, set, why, sizeof why);
        if (rc != 0)
            snprintf(err, errlen, "cannot create the schema: %s", why);
    } else if (version <= 0) {
        snprintf(err, errlen, "not an observe database (it has other tables and no schema version)");
        rc = -1;
    } else if (version > OBS_DB_VERSION) {
        snprintf(err, errlen, "made by a newer observe (schema version %d; this program knows up to %d)",
                 version, OBS_DB_VERSION);
        rc = -1;
    } else if (version < OBS_DB_VERSION) {
        for (int v = version + 1; v <= OBS_DB_VERSION && rc == 0; v++) {
            rc = obs_db_exec(db, obs_db_migrations[v], why, sizeof why);
            if (rc != 0)
                snprintf(err, errlen, "cannot migrate schema version %d to %d: %s", v - 1, v, why);
        }
        if (rc == 0 && (obs_db_remake_views(db, why, sizeof why) != 0 || obs_db_exec(db, set, why, sizeof why) != 0)) {
            snprintf(err, errlen, "cannot migrate to schema version %d: %s", OBS_DB_VERSION, why);
            rc = -1;
        }
    }
    obs_db_exec(db, rc == 0 ? "COMMIT" : "ROLLBACK", why, sizeof why);
    return rc;
}

static int obs_db_check_readable(sqlite3 *db, int older_ok, char *err, size_t errlen)
{
    int version = obs_db_version(db);
    if (version < 0) {
        snprintf(err, errlen, "cannot read: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (version == 0) {
        snprintf(err, errlen, "not an observe database (no schema version)");
        return -1;
    }
    if (version > OBS_DB_VERSION) {
        snprintf(err, errlen, "made by a newer observe (schema version %d; this program knows up to %d)", version,
                 OBS_DB_VERSION);
        return -1;
    }
    if (version < OBS_DB_VERSION && !older_ok) {
        snprintf(err, errlen, "made by an older observe (schema version %d): load into it once to migrate it",
                 version);
        return -1;
    }
    return 0;
}

int obs_db_open(const char *path, enum obs_db_mode mode, sqlite3 **dbp, char *err, size_t errlen)
{
    char why[256];
    *dbp = NULL;
    struct stat st;
    if (mode != OBS_DB_WRITE && stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* one connection per thread: SQLite's own mutexes are not needed */
    int flags = SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX | (mode != OBS_DB_WRITE ? SQLITE_OPEN_READONLY
                                                              : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
    sqlite3_busy_timeout(db, 600000);
    int rc = 0;
    if (mode == OBS_DB_WRITE) {
        /* WAL: readers (a snapshot, a query) never block a load, nor it them. */
        rc = obs_db_exec(db, "PRAGMA page_size = 16384; PRAGMA journal_mode = DELETE; PRAGMA synchronous = NORMAL", why, sizeof why);
        if (rc != 0)
            snprintf(err, errlen, "%s: %s", path, why);
        else if (obs_db_prepare_schema(db, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s: %s", path, why);
            rc = -1;
        }
    } else if (obs_db_check_readable(db, mode == OBS_DB_READ_OLDER, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        rc = -1;
    }
    if (rc != 0) {
        sqlite3_close(db);
        return -1;
    }
    *dbp = db;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 if there is none
 * (overlong forms, surrogates and code points past U+10FFFF are invalid). */
static int utf8_length(const unsigned char *s)
{
    unsigned char c = s[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (int i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

void obs_text_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = utf8_length(p);
        if (n == 1 && (*p < 0x20 || *p == 0x7F))
            *p = *p == '\n' || *p == '\t' ? ' ' : '?';
        if (n == 0) {
            *p = '?';
            n = 1;
        }
        p += n;
    }
}
