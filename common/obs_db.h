/* obs_db.h — opening an observe SQLite database, for every program that does
 * (observe-slicer, observe-manager).
 *
 * Every database is opened the same careful way, because one pulled from
 * another host is untrusted input: no symlink followed, defensive mode,
 * trusted_schema off, a busy timeout so that concurrent writers wait for each
 * other.  A writable open creates the schema (db/schema.sql) in an empty
 * database and migrates one made by an older version; a database newer than
 * this program is refused with a clear message.
 */
#ifndef OBS_DB_H
#define OBS_DB_H

#include <sqlite3.h>
#include <stddef.h>

#define OBS_DB_VERSION 4 /* PRAGMA user_version of db/schema.sql */

enum obs_db_mode {
    OBS_DB_READ,   /* must exist and have our schema */
    OBS_DB_READ_OLDER, /* must exist and have our schema or an older one (to copy it) */
    OBS_DB_WRITE,  /* created and migrated as needed */
};

/* 0 and *db set; -1 with err set (naming the file). */
int obs_db_open(const char *path, enum obs_db_mode mode, sqlite3 **db, char *err, size_t errlen);

/* Runs SQL that returns no rows; -1 with err set. */
int obs_db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);

/* The schema version of an open database (-1 on error). */
int obs_db_version(sqlite3 *db);

/* The schema this program creates: tables (db/schema.sql) and views
 * (db/views.sql). */
/* Makes text that came from elsewhere (names in a pulled database, a
 * remote's stderr, SQLite's messages quoting them) one line, safe to print and to
 * store as TEXT, in place: a control character or a byte that is not part
 * of valid UTF-8 becomes '?' (newline and tab a space), so no terminal
 * escape passes through and every reader can decode it. */
void obs_text_clean(char *s);

extern const char obs_db_schema_sql[];
extern const char obs_db_views_sql[];

#endif
