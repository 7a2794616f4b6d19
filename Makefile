# dolon: trace a running PostgreSQL server to a mnemic tracing backend

MODULE_big = dolon
OBJS = \
	src/backends.o \
	src/collector.o \
	src/custom_profilers.o \
	src/dolon.o \
	src/function_profiling.o \
	src/functions.o \
	src/guc.o \
	src/host.o \
	src/line_protocols.o \
	src/listen.o \
	src/live_page.o \
	src/metrics_exposition.o \
	src/metrics_request.o \
	src/metrics_server.o \
	src/metrics_tables.o \
	src/profiler_runner.o \
	src/profilers.o \
	src/render.o \
	src/protocol.o \
	src/sampling.o \
	src/throttle.o \
	src/tracers.o \
	src/transaction.o \
	src/transport.o \
	src/utf8_text.o \
	src/worker.o

EXTENSION = dolon
DATA = dolon--1.0.sql dolon--1.1.sql dolon--1.2.sql dolon--1.0--1.1.sql \
	dolon--1.1--1.2.sql \
	src/page/dolon_page.html src/page/dolon_page.css src/page/dolon_page.js
PGFILEDESC = "dolon - trace a running server to a mnemic backend"

# The metrics endpoint serves HTTP with libmicrohttpd
SHLIB_LINK += -lmicrohttpd

# make installcheck: the pg_regress suites, in a temporary instance of the
# installed server that preloads dolon with the settings they expect
REGRESS = dolon tracing_api reading
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=$(srcdir)/test/regress.conf

# make prove_installcheck: the TAP tests, each with clusters of its own,
# using the installed server and the module DolonTest in test/lib
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

override PROVE_FLAGS += -I $(srcdir)/test/lib

.PHONY: prove_installcheck
prove_installcheck:
	$(prove_installcheck)

# Each object depends on the headers it includes, as the compiler lists them
override CFLAGS += -MMD -MP
-include $(OBJS:.o=.d)
EXTRA_CLEAN += $(OBJS:.o=.d)

# make fuzz: the fuzzing harnesses of test/fuzz (clang, libFuzzer)
include $(srcdir)/test/fuzz/fuzz.mk
