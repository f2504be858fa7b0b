# observe — one Makefile for the whole project.
#   make            build the tools into build/ (library, wrapper, slicer, manager, lab programs)
#   make check      build and run every test (installs missing Debian packages as root)
#   make demo       run the lab end to end and write the report
#   make bench      run the benchmarks in bench/ (not tests: they print ratios)
#   make install    PREFIX=/usr/local DESTDIR= honoured; make uninstall the same
#   make deb        build/observe_VERSION_ARCH.deb (installs under /usr)
#   make clean

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=gnu11 -Wall -Wextra -Werror
VERSION := 0.9.0
PREFIX  ?= /usr/local
BINDIR  := $(PREFIX)/bin
LIBDIR  := $(PREFIX)/lib/observe
MANDIR  := $(PREFIX)/share/man
MAN1     = $(B)/man/observe.1 $(B)/man/observe-slicer.1 $(B)/man/observe-manager.1
MAN5     = $(B)/man/observe-db.5
MAN7     = $(B)/man/libobserve.7
B       := build

LIB_SRC   := preload/obs_init.c preload/obs_track.c preload/obs_log.c preload/obs_wrap.c preload/obs_clock.c preload/obs_libc.c
LIB_HDR   := preload/obs.h common/obs_format.h
READER    := common/obs_reader.c
READER_H  := common/obs_reader.h common/obs_format.h
# The database side, shared by observe-slicer and observe-manager.
DBLIB     := common/obs_db.c common/obs_filter.c common/obs_stats.c
DBLIB_H   := common/obs_cli.h common/obs_db.h common/obs_filter.h common/obs_stats.h $(B)/gen/obs_db_sql.h \
             $(B)/gen/obs_version.h
DB_SQL    := db/schema.sql db/views.sql $(sort $(wildcard db/migrate-*.sql))
SLICER_SRC := slicer/observe-slicer.c slicer/slc_load.c slicer/slc_query.c slicer/slc_metrics.c $(READER) $(DBLIB)
SLICER_H  := slicer/slc.h $(READER_H) $(DBLIB_H)
MANAGER_SRC := manager/observe-manager.c manager/mgr_inventory.c manager/mgr_pull.c manager/mgr_merge.c \
               manager/mgr_plot.c manager/mgr_report.c $(DBLIB)
MANAGER_H := manager/mgr.h $(DBLIB_H)
TEST_PROGS := $(patsubst tests/progs/%.c,$(B)/tests/%,$(wildcard tests/progs/*.c))
LAB_PROGS  := $(B)/observe-httpd $(B)/observe-udpd $(B)/observe-udpc $(B)/observe-idle

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer

.PHONY: all tests check check-deps demo bench install uninstall deb clean deps

# What a user runs; everything the tests need besides is built by make check.
all: $(B)/libobserve.so $(B)/observe-slicer $(B)/observe-manager $(B)/observe $(LAB_PROGS) $(MAN1) $(MAN5) $(MAN7)

# Man pages: docs/man/ with the version filled in; observe-db(5) is made from
# db/README.md, the one description of the database's views.
$(B)/man/%: docs/man/% Makefile
	@mkdir -p $(@D)
	sed 's|@VERSION@|$(VERSION)|g' $< > $@
$(B)/man/observe-db.5: db/README.md scripts/md2man Makefile
	@mkdir -p $(@D)
	scripts/md2man $(VERSION) < $< > $@.tmp && mv $@.tmp $@

TEST_BUILD := $(B)/tests/unit $(TEST_PROGS) $(B)/genlogs $(B)/tests/libctorconnect.so \
     $(B)/asan/libobserve.so $(B)/asan/observe-slicer $(B)/tsan/libobserve.so $(B)/tsan/netclient $(B)/tsan/twothreads \
     $(B)/tests/netclient-fortify $(B)/tests/netclient-static $(B)/fuzz/fuzz_reader $(B)/fuzz/fuzz_dbcheck $(B)/asan/observe-manager
tests: all $(TEST_BUILD)

$(B) $(B)/tests $(B)/asan $(B)/tsan $(B)/gen $(B)/fuzz:
	mkdir -p $@

$(B)/libobserve.so: $(LIB_SRC) $(LIB_HDR) | $(B)
	$(CC) $(WARN) $(CFLAGS) -flto -fPIC -shared -fvisibility=hidden -o $@ $(LIB_SRC) -ldl -lpthread

$(B)/asan/libobserve.so: $(LIB_SRC) $(LIB_HDR) | $(B)/asan
	$(CC) $(WARN) -O1 -g $(SAN_FLAGS) -fPIC -shared -fvisibility=hidden -o $@ $(LIB_SRC) -ldl -lpthread

# The library for arm64 (no TSC there: every timestamp is clock_gettime), with
# Debian's cross compiler; not part of all, built by the tests when present.
$(B)/arm64/libobserve.so: $(LIB_SRC) $(LIB_HDR)
	@mkdir -p $(@D)
	aarch64-linux-gnu-gcc $(WARN) $(CFLAGS) -fPIC -shared -fvisibility=hidden -o $@ $(LIB_SRC) -ldl -lpthread

# ThreadSanitizer: the library and the threaded test client
$(B)/tsan/libobserve.so: $(LIB_SRC) $(LIB_HDR) | $(B)/tsan
	$(CC) $(WARN) -O1 -g -fsanitize=thread -fPIC -shared -fvisibility=hidden -o $@ $(LIB_SRC) -ldl -lpthread

$(B)/tsan/netclient: tests/progs/netclient.c | $(B)/tsan
	$(CC) $(WARN) -O1 -g -fsanitize=thread -o $@ $< -lpthread

$(B)/tsan/twothreads: tests/progs/twothreads.c tests/progs/progs.h | $(B)/tsan
	$(CC) $(WARN) -O1 -g -fsanitize=thread -o $@ $< -lpthread

# The C unit tier (tests/unit): the pure parts, with the sanitizers on.
UNIT_SRC := $(wildcard tests/unit/*.c) $(READER) common/obs_filter.c common/obs_stats.c
$(B)/tests/unit: $(UNIT_SRC) tests/unit/unit.h $(READER_H) common/obs_filter.h common/obs_stats.h | $(B)/tests
	$(CC) $(WARN) -O1 -g $(SAN_FLAGS) -o $@ $(UNIT_SRC) -lsqlite3 -lm

$(B)/gen/obs_version.h: Makefile | $(B)/gen
	echo '#define OBSERVE_VERSION "$(VERSION)"' > $@.tmp && mv $@.tmp $@

# The views' @ lines are expanded from the format header's period lists.
$(B)/gen/viewgen: scripts/viewgen.c common/obs_format.h | $(B)/gen
	$(CC) $(WARN) -O1 -o $@ scripts/viewgen.c

$(B)/gen/views.sql: db/views.sql $(B)/gen/viewgen
	$(B)/gen/viewgen < db/views.sql > $@.tmp && mv $@.tmp $@

$(B)/gen/obs_db_sql.h: scripts/sql2c $(DB_SQL) $(B)/gen/views.sql | $(B)/gen
	scripts/sql2c $(subst db/views.sql,$(B)/gen/views.sql,$(DB_SQL)) > $@.tmp && mv $@.tmp $@

$(B)/observe-slicer: $(SLICER_SRC) $(SLICER_H) | $(B)
	$(CC) $(WARN) $(CFLAGS) -I$(B)/gen -o $@ $(SLICER_SRC) -lsqlite3 -lm

$(B)/asan/observe-slicer: $(SLICER_SRC) $(SLICER_H) | $(B)/asan
	$(CC) $(WARN) -O1 -g $(SAN_FLAGS) -I$(B)/gen -o $@ $(SLICER_SRC) -lsqlite3 -lm

$(B)/observe-manager: $(MANAGER_SRC) $(MANAGER_H) | $(B)
	$(CC) $(WARN) $(CFLAGS) -I$(B)/gen -o $@ $(MANAGER_SRC) -lsqlite3 -lm

$(B)/asan/observe-manager: $(MANAGER_SRC) $(MANAGER_H) | $(B)/asan
	$(CC) $(WARN) -O1 -g $(SAN_FLAGS) -I$(B)/gen -o $@ $(MANAGER_SRC) -lsqlite3 -lm

$(B)/observe: preload/observe.sh Makefile | $(B)
	sed 's|@LIBDIR@|$(LIBDIR)|g; s|@VERSION@|$(VERSION)|g' $< > $@ && chmod +x $@

$(B)/observe-%: lab/observe-%.c lab/lab.c lab/lab.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -o $@ $< lab/lab.c -levent -lm

# The same client built as distributions build theirs: glibc substitutes
# __recv_chk and friends, which the library must observe too.
$(B)/tests/netclient-fortify: tests/progs/netclient.c | $(B)/tests
	$(CC) $(WARN) -O2 -D_FORTIFY_SOURCE=3 -o $@ $< -lpthread

# A library whose constructor connects, preloaded beside ours in the tests.
$(B)/tests/libctorconnect.so: tests/libs/ctorconnect.c | $(B)/tests
	$(CC) $(WARN) -O2 -fPIC -shared -o $@ $<

# Clients the library cannot (fully) see: io_uring through liburing, and a
# static build, which ld.so never preloads into.
$(B)/tests/unseen: tests/progs/unseen.c tests/progs/progs.h | $(B)/tests
	$(CC) $(WARN) -O2 -g -o $@ $< -luring

$(B)/tests/netclient-static: tests/progs/netclient.c | $(B)/tests
	$(CC) $(WARN) -O2 -static -o $@ $< -lpthread

$(B)/tests/%: tests/progs/%.c tests/progs/progs.h | $(B)/tests
	$(CC) $(WARN) -O2 -g -o $@ $< -lpthread

# libFuzzer target for the log reader (clang; tests/test_fuzz.py runs it).
$(B)/fuzz/fuzz_reader: tests/fuzz/fuzz_reader.c $(READER) $(READER_H) | $(B)/fuzz
	clang $(WARN) -g -O1 -fsanitize=fuzzer,address,undefined -o $@ tests/fuzz/fuzz_reader.c $(READER)

# libFuzzer target for the manager's check of a pulled database.
$(B)/fuzz/fuzz_dbcheck: tests/fuzz/fuzz_dbcheck.c manager/mgr_merge.c $(DBLIB) $(DBLIB_H) manager/mgr.h | $(B)/fuzz
	clang $(WARN) -g -O1 -fsanitize=fuzzer,address,undefined -I$(B)/gen -o $@ tests/fuzz/fuzz_dbcheck.c \
	    manager/mgr_merge.c $(DBLIB) -lsqlite3 -lm

# Synthetic logs in the real format, for the slicer's tests and benchmark.
$(B)/genlogs: bench/genlogs.c common/obs_format.h | $(B)
	$(CC) $(WARN) -O2 -g -o $@ $<

# Installs the Debian packages the build and the tests need, when missing.
deps:
	@scripts/install-deps

check: deps
	@$(MAKE) --no-print-directory tests
	@tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@lab/demo.sh

bench: all $(B)/genlogs
	@bench/run.sh
	@bench/slicer-load.sh
	@bench/manager-merge.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man7
	install -m 0755 $(B)/libobserve.so $(DESTDIR)$(LIBDIR)/libobserve.so
	install -m 0755 $(B)/observe-slicer $(B)/observe-manager $(DESTDIR)$(BINDIR)/
	sed 's|@LIBDIR@|$(LIBDIR)|g; s|@VERSION@|$(VERSION)|g' preload/observe.sh > $(DESTDIR)$(BINDIR)/observe
	chmod 0755 $(DESTDIR)$(BINDIR)/observe
	install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/observe $(DESTDIR)$(BINDIR)/observe-slicer $(DESTDIR)$(BINDIR)/observe-manager
	rm -f $(DESTDIR)$(LIBDIR)/libobserve.so
	-rmdir $(DESTDIR)$(LIBDIR) 2>/dev/null
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1))) $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5))) \
	    $(addprefix $(DESTDIR)$(MANDIR)/man7/,$(notdir $(MAN7)))

# A Debian package of the tools under /usr, built with dpkg-deb from a staged
# install (scripts/mkdeb writes its control file).
deb: all
	scripts/mkdeb $(VERSION) $(B)

clean:
	rm -rf $(B)
