/* unit_format.c — the log format's own rules (common/obs_format.h): the
 * checksum notices every flipped bit, the tag rule, the slot sizes. */
#include <string.h>

#include "../../common/obs_format.h"
#include "unit.h"

/* How many of the block's single-bit flips leave the checksum of that
 * version unchanged. */
static int unseen_flips(uint32_t version, unsigned char *block, size_t len)
{
    uint32_t good = obs_checksum_of_version(version, block, len);
    int unseen = 0;
    for (size_t bit = 0; bit < 8 * len; bit++) {
        block[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        unseen += obs_checksum_of_version(version, block, len) == good;
        block[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    return unseen;
}

UNIT(the_checksum_changes_with_every_flipped_bit)
{
    const size_t sizes[] = { sizeof(struct obs_conn_fields), sizeof(struct obs_xchg_fields),
                             sizeof(struct obs_udp_fields), sizeof(struct obs_dgram_fields),
                             sizeof(struct obs_wait_fields), OBS_IDENTITY_END - OBS_IDENTITY_BEGIN, 13 };
    static unsigned char block[4096];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (unsigned char)(i * 37 + 11);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        CHECK(unseen_flips(OBS_VERSION, block, sizes[s]) == 0);
        CHECK(unseen_flips(3, block, sizes[s]) == 0);
    }
    /* why version 3 exists: the fold of versions 1 and 2 misses the top
     * three bits of a block's last word */
    CHECK(unseen_flips(2, block, sizeof(struct obs_conn_fields)) == 3);
}

UNIT(the_checksum_depends_on_the_length_and_the_tail)
{
    unsigned char zeros[24] = { 0 };
    CHECK(obs_checksum(zeros, 16) != obs_checksum(zeros, 24));
    CHECK(obs_checksum(zeros, 17) != obs_checksum(zeros, 16));
    unsigned char tail[19] = { 0 };
    uint32_t before = obs_checksum(tail, sizeof tail);
    tail[18] = 1; /* a byte past the last whole word */
    CHECK(obs_checksum(tail, sizeof tail) != before);
}

UNIT(tags_are_key_value_pairs_with_plain_keys)
{
    CHECK(obs_tags_valid(""));
    CHECK(obs_tags_valid("server=s1"));
    CHECK(obs_tags_valid("server=s1,mechanism=epoll,run.id:2-x_y=a b/c"));
    CHECK(obs_tags_valid("k="));           /* an empty value is a value */
    CHECK(!obs_tags_valid("server"));      /* no value */
    CHECK(!obs_tags_valid("=v"));          /* no key */
    CHECK(!obs_tags_valid("a=1,"));        /* an empty pair at the end */
    CHECK(!obs_tags_valid("a=1,,b=2"));
    CHECK(!obs_tags_valid("k y=1"));       /* a space in the key */
    CHECK(!obs_tags_valid("k\xc3\xa9=1")); /* a non-ASCII key */
    CHECK(obs_tag_key_len("ab_c.d:e-f=1") == 10 && obs_tag_key_len("=1") == 0);
}

UNIT(every_writer_slot_holds_its_fields)
{
    const size_t fields[OBS_REC_TYPE_MAX] = {
        [OBS_REC_CONN] = sizeof(struct obs_conn_fields),   [OBS_REC_XCHG] = sizeof(struct obs_xchg_fields),
        [OBS_REC_UDP] = sizeof(struct obs_udp_fields),     [OBS_REC_DGRAM] = sizeof(struct obs_dgram_fields),
        [OBS_REC_WAIT] = sizeof(struct obs_wait_fields),
    };
    for (int t = 1; t < OBS_REC_TYPE_MAX; t++)
        CHECK(sizeof(struct obs_rec_hdr) + fields[t] <= (size_t)obs_rec_units[t] * OBS_UNIT);
    CHECK(sizeof(struct obs_file_header) <= OBS_HEADER_SIZE);
    CHECK(OBS_IDENTITY_BEGIN < OBS_IDENTITY_END);
}
