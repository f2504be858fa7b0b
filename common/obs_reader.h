/* obs_reader.h — reading libobserve logs, for every program that does.
 *
 * The reader checks the header (magic, byte order, version, checksum), then
 * walks the records.  Damage is reported, never loaded as data: a record
 * that fails its checksum, a header that makes no sense, a slot that was
 * reserved but never written (the writer was killed between the two), or a
 * file that ends inside a record.  After a problem the reader resynchronises
 * on the next 64-byte unit, so every valid record around the damage is still
 * returned.
 */
#ifndef OBS_READER_H
#define OBS_READER_H

#include <stdint.h>
#include <stdio.h>

#include "obs_format.h"

struct obs_record {
    enum obs_rec_type type;
    uint64_t offset;   /* the record's id within its log */
    uint32_t state;    /* OBS_STATE_OPEN (live or never closed) or OBS_STATE_FINAL */
    uint32_t flags;    /* OBS_RF_* */
    union {
        struct obs_conn_fields conn;
        struct obs_xchg_fields xchg;
        struct obs_udp_fields udp;
        struct obs_dgram_fields dgram;
        struct obs_wait_fields wait;
    } u;
};

/* Logs are read through a window of this many bytes, so that reading one
 * costs the same memory whatever its size. */
#define OBS_WINDOW (4u << 20)

struct obs_log_reader {
    char path[4096];
    struct obs_file_header hdr;
    int fd;                /* the log, or -1 for a log in memory */
    unsigned char *data;   /* the window: the file's bytes [base, base + have) */
    uint64_t base, have;
    int owned;             /* data was allocated by the reader */
    uint64_t end;          /* bytes we may walk: header + reserved, within the file */
    uint64_t pos;
    int header_damaged;    /* identity block fails its checksum */
    uint64_t torn, damaged; /* problems met so far */
    char msg[4608];        /* the last problem, naming the file */
    char warn[4608];       /* set by open for a readable log with a problem */
};

/* Open and check a log.  0 on success (r->warn is set if the log is
 * truncated or its header identity is damaged); -1 with r->msg set (the
 * file is not a log we can read at all). */
int obs_reader_open(struct obs_log_reader *r, const char *path);

/* The same for a log already in memory (borrowed, not copied: it must
 * outlive the reader); name is used in messages. */
int obs_reader_open_mem(struct obs_log_reader *r, const char *name, const void *data, size_t size);

/* Go on from a record offset returned earlier (a multiple of the unit past
 * the header): 0, or -1 if it cannot be one. */
int obs_reader_seek(struct obs_log_reader *r, uint64_t offset);

/* The next record: 1 and *rec filled; 0 at the end; -1 for a problem (r->msg
 * says what and where; call again to go on past it). */
int obs_reader_next(struct obs_log_reader *r, struct obs_record *rec);

void obs_reader_close(struct obs_log_reader *r);

/* Text forms shared by dump and the slicer. */
const char *obs_mech_name(unsigned mech);
void obs_addr_format(const struct obs_addr *a, char *buf, size_t len);  /* "-" when unknown */
void obs_addr_ip(const struct obs_addr *a, char *buf, size_t len);      /* address only */
void obs_fprint_escaped(FILE *f, const char *s, size_t len);           /* quoted, C escapes */
void obs_fprint_record(FILE *f, const struct obs_record *rec);         /* one line */
void obs_fprint_header(FILE *f, const struct obs_log_reader *r);        /* header lines */

#endif
