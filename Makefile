# dolon: trace a running PostgreSQL server to a mnemic tracing backend

MODULE_big = dolon
OBJS = \
	src/collector.o \
	src/custom_profilers.o \
	src/dolon.o \
	src/function_profiling.o \
	src/functions.o \
	src/guc.o \
	src/host.o \
	src/profiler_runner.o \
	src/profilers.o \
	src/render.o \
	src/protocol.o \
	src/sampling.o \
	src/throttle.o \
	src/tracers.o \
	src/transaction.o \
	src/transport.o \
	src/worker.o

EXTENSION = dolon
DATA = dolon--1.0.sql
PGFILEDESC = "dolon - trace a running server to a mnemic backend"

REGRESS = dolon

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every file includes the shared header
$(OBJS): src/dolon.h
