/* fuzz_dbcheck — libFuzzer target for observe-manager's check of a pulled
 * database (manager/mgr_merge.c: mgr_check_db), which is the first thing
 * that touches a file sent by another host.  Any bytes as a database file:
 * the check must accept or refuse, never crash, read out of bounds or hang;
 * what it accepts must then merge without error.  Its seeds are made by
 * tests/test_fuzz.py with the build under test: a real database loaded from
 * the reader's seed logs and one with a planted trigger (both with 512-byte
 * pages, to keep inputs small), so that they always have the current schema.
 *   build/fuzz/fuzz_dbcheck -max_total_time=60 CORPUS_COPY_DIR
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/obs_db.h"
#include "../../manager/mgr.h"

const char *mgr_prog = "fuzz_dbcheck";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64], into[64];
    if (!path[0]) {
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        snprintf(path, sizeof path, "/tmp/fuzz_dbcheck.%d.db", (int)getpid());
        snprintf(into, sizeof into, "/tmp/fuzz_dbcheck.%d.merged.db", (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    char err[1024];
    if (mgr_check_db(path, err, sizeof err) == 0) {
        /* accepted: it must merge (into a fresh database each time) */
        sqlite3 *db;
        unlink(into);
        if (obs_db_open(into, OBS_DB_WRITE, &db, err, sizeof err) == 0) {
            struct mgr_merge_stats st;
            if (mgr_merge(db, path, "fuzz", &st, err, sizeof err) != 0 && !strstr(err, "malformed") &&
                !strstr(err, "corrupt")) {
                fprintf(stderr, "accepted but failed to merge: %s\n", err);
                abort();
            }
            sqlite3_close(db);
        }
    }
    unlink(path);
    return 0;
}
