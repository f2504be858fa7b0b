/* unit_filter.c — the filters' parsing and matching (common/obs_filter.c):
 * addresses and networks, wall-clock times, tags, the options. */
#include <arpa/inet.h>
#include <string.h>

#include "../../common/obs_filter.h"
#include "unit.h"

static struct obs_addr addr(const char *text, int port)
{
    struct obs_addr a = { 0 };
    CHECK(obs_addr_parse(text, &a) == 0);
    a.port = (uint16_t)port;
    return a;
}

UNIT(addresses_of_both_families_are_parsed_and_nonsense_refused)
{
    struct obs_addr a;
    CHECK(obs_addr_parse("198.18.0.1", &a) == 0 && a.family == AF_INET && a.addr[0] == 198 && a.addr[3] == 1);
    CHECK(obs_addr_parse("::1", &a) == 0 && a.family == AF_INET6 && a.addr[15] == 1);
    CHECK(obs_addr_parse("198.18.0.256", &a) == -1);
    CHECK(obs_addr_parse("example.com", &a) == -1);
    CHECK(obs_addr_parse("", &a) == -1);
    CHECK(obs_addr_parse("10.0.0.1:80", &a) == -1); /* no port here */
}

UNIT(a_network_holds_its_addresses_and_no_other)
{
    struct obs_addr net = addr("198.18.0.0", 0);
    CHECK(obs_addr_in_net(&(struct obs_addr){ 0 }, &net, 15) == 0);
    struct obs_addr in = addr("198.19.255.255", 80), out = addr("198.20.0.0", 80), v6 = addr("::1", 80);
    CHECK(obs_addr_in_net(&in, &net, 15));
    CHECK(!obs_addr_in_net(&out, &net, 15));
    CHECK(!obs_addr_in_net(&v6, &net, 15)); /* another family never matches */
    CHECK(obs_addr_in_net(&out, &net, 0));  /* /0 holds its whole family */
    struct obs_addr net6 = addr("2001:db8::", 0), a6 = addr("2001:db8:0:1::5", 0), b6 = addr("2001:db9::", 0);
    CHECK(obs_addr_in_net(&a6, &net6, 32) && !obs_addr_in_net(&b6, &net6, 32));
    CHECK(obs_addr_in_net(&a6, &a6, 128) && !obs_addr_in_net(&a6, &net6, 128));
}

UNIT(wall_clock_times_are_utc_nanoseconds)
{
    int64_t ns;
    CHECK(obs_parse_wall_time("1970-01-01", &ns) == 0 && ns == 0);
    CHECK(obs_parse_wall_time("2026-12-02T18:53:14Z", &ns) == 0 && ns == 1796237594LL * 1000000000LL);
    CHECK(obs_parse_wall_time("2026-12-02T18:53", &ns) == 0 && ns == 1796237580LL * 1000000000LL);
    CHECK(obs_parse_wall_time("2026-12-02T18:53:14.25", &ns) == 0 && ns == 1796237594LL * 1000000000LL + 250000000);
    CHECK(obs_parse_wall_time("@1.5", &ns) == 0 && ns == 1500000000LL);
    CHECK(obs_parse_wall_time("2024-02-29", &ns) == 0); /* a leap day */
    CHECK(obs_parse_wall_time("2026-13-01", &ns) == -1);
    CHECK(obs_parse_wall_time("2000-02-29", &ns) == 0);
    CHECK(obs_parse_wall_time("2026-02-30", &ns) == -1);
    CHECK(obs_parse_wall_time("2100-02-29", &ns) == -1); /* no leap day in 2100 */
    CHECK(obs_parse_wall_time("2026-04-31", &ns) == -1);
    CHECK(obs_parse_wall_time("2026-12-02T25:00", &ns) == -1);
    CHECK(obs_parse_wall_time("yesterday", &ns) == -1);
    CHECK(obs_parse_wall_time("@", &ns) == -1);
    CHECK(obs_parse_wall_time("2026-12-02 junk", &ns) == -1);
}

struct pairs {
    char text[256];
};

static void collect(void *ctx, const char *k, size_t kl, const char *v, size_t vl)
{
    struct pairs *p = ctx;
    size_t n = strlen(p->text);
    snprintf(p->text + n, sizeof p->text - n, "[%.*s|%.*s]", (int)kl, k, (int)vl, v);
}

UNIT(tag_lists_are_walked_pair_by_pair)
{
    struct pairs p = { "" };
    obs_tags_each("server=s1,mechanism=epoll,empty=", collect, &p);
    CHECK(!strcmp(p.text, "[server|s1][mechanism|epoll][empty|]"));
    CHECK(obs_tag_valid("server") && obs_tag_valid("server=s1") && !obs_tag_valid("a=1,b=2") && !obs_tag_valid("=x"));
}

static int parse(struct obs_filter *f, int argc, char **argv, char *err)
{
    for (int i = 0; i < argc; i++) {
        int rc = obs_filter_option(f, argc, argv, &i, err, 256);
        if (rc != 1)
            return rc;
    }
    return 1;
}

UNIT(filter_options_are_taken_and_bad_values_refused)
{
    char err[256] = "";
    struct obs_filter f;
    obs_filter_init(&f);
    char *good[] = { "--peer", "198.18.0.0/15", "--port", "8080", "--side", "client", "--tag", "server=s1",
                     "--since", "@100", "--until", "@200" };
    CHECK(parse(&f, 12, good, err) == 1);
    CHECK(f.has_peer && f.prefix == 15 && f.port == 8080 && f.side == 0 && f.ntags == 1);
    struct obs_addr in = addr("198.18.3.4", 8080), other_port = addr("198.18.3.4", 80);
    CHECK(obs_filter_record_passes(&f, &in, 0, 150 * 1000000000LL));
    CHECK(!obs_filter_record_passes(&f, &other_port, 0, 150 * 1000000000LL));
    CHECK(!obs_filter_record_passes(&f, &in, 1, 150 * 1000000000LL));    /* the other side */
    CHECK(!obs_filter_record_passes(&f, &in, 0, 200 * 1000000000LL));    /* until is exclusive */
    CHECK(obs_filter_run_passes(&f, "/usr/bin/curl", "mechanism=poll,server=s1"));
    CHECK(!obs_filter_run_passes(&f, "/usr/bin/curl", "server=s2"));
    obs_filter_free(&f);

    const char *bad[][2] = { { "--peer", "198.18.0.0/33" }, { "--port", "65536" }, { "--port", "x" },
                             { "--side", "both" }, { "--since", "soon" }, { "--tag", "=v" } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        obs_filter_init(&f);
        char *argv[] = { (char *)bad[i][0], (char *)bad[i][1] };
        err[0] = '\0';
        CHECK(parse(&f, 2, argv, err) == -1 && err[0]);
        obs_filter_free(&f);
    }
    obs_filter_init(&f);
    char *twice[] = { "--port", "1", "--port", "2" };
    CHECK(parse(&f, 4, twice, err) == -1);
    obs_filter_free(&f);
}
