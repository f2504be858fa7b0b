/* fuzz_reader — libFuzzer target for the log reader (common/obs_reader.c):
 * any bytes as a log, walked record by record and printed the way `dump`
 * prints them.  The reader must report damage, never crash, read out of
 * bounds or loop.  The seed corpus (tests/fuzz/corpus/) holds real logs
 * made by the tests' clients under libobserve.
 *   build/fuzz/fuzz_reader -max_total_time=60 CORPUS_COPY_DIR
 */
#include <stdint.h>
#include <stdio.h>

#include "../../common/obs_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    struct obs_log_reader r;
    if (obs_reader_open_mem(&r, "fuzz-input", data, size) != 0)
        return 0;
    obs_fprint_header(sink, &r);
    struct obs_record rec;
    int rc, guard = 0;
    while ((rc = obs_reader_next(&r, &rec)) != 0 && guard++ < 1000000)
        if (rc > 0)
            obs_fprint_record(sink, &rec);
    obs_reader_close(&r);
    return 0;
}
