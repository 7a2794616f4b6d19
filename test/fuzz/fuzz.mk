# make fuzz: build each fuzzing harness of test/fuzz with libFuzzer and the
# address and undefined behaviour sanitizers, then run each FUZZ_SECONDS
# seconds: first over its seeds (corpus/HARNESS) and the inputs that once
# failed (regressions/HARNESS), then on inputs of its own making.  One line
# per harness; any finding (crash, sanitizer report, leak, timeout, running
# out of memory) fails it, its input kept in FUZZ_FINDINGS/HARNESS.
#
# Included by the top Makefile, after PGXS, whose directories it uses.

FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_DIR = $(srcdir)/test/fuzz
FUZZ_BUILD = $(FUZZ_DIR)/build
FUZZ_FINDINGS ?= $(FUZZ_DIR)/findings

# Each harness, the files of src/ it compiles, and its longest input: a UDP
# datagram for the collector's decoder (MAX_DATAGRAM_BYTES), a setting's
# text, a string of a datagram or the fields of an HTTP request otherwise
FUZZ_HARNESSES = decode profilers host csv http lines
fuzz_sources_decode = src/protocol.c
fuzz_max_len_decode = 65507
fuzz_sources_profilers = src/profilers.c
fuzz_max_len_profilers = 8192
fuzz_sources_host = src/backends.c
fuzz_max_len_host = 1024
fuzz_sources_csv = src/render.c
fuzz_max_len_csv = 4096
fuzz_sources_http = src/metrics_request.c
fuzz_max_len_http = 4096
fuzz_sources_lines = src/line_protocols.c src/protocol.c src/utf8_text.c
fuzz_max_len_lines = 4096

# The harnesses link PostgreSQL's libpgcommon and libpgport and the support
# file, with lld, which leaves out, unresolved, what no harness reaches; and
# libpq, whose PQExpBuffer the JSON parser of libpgcommon uses from 18 on
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-ffunction-sections -fdata-sections -Wall -Wno-ignored-attributes \
	-I$(FUZZ_DIR) -I$(srcdir)/src -I$(includedir_server)
FUZZ_LDFLAGS = -fuse-ld=lld -Wl,--gc-sections -L$(pkglibdir) -L$(libdir)
FUZZ_LIBS = -lpgcommon_shlib -lpgport_shlib -lpq

FUZZ_PROGRAMS = $(addprefix $(FUZZ_BUILD)/,$(FUZZ_HARNESSES))
EXTRA_CLEAN += $(FUZZ_BUILD)

.SECONDEXPANSION:
$(FUZZ_PROGRAMS): $(FUZZ_BUILD)/%: $(FUZZ_DIR)/%.c $(FUZZ_DIR)/support.c \
		$(FUZZ_DIR)/support.h $$(fuzz_sources_$$*) $(wildcard $(srcdir)/src/*.h)
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_LDFLAGS) -o $@ $< $(FUZZ_DIR)/support.c \
		$(addprefix $(srcdir)/,$(fuzz_sources_$*)) $(FUZZ_LIBS)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_PROGRAMS)

fuzz: fuzz-build
	@failed=0; \
	$(foreach harness,$(FUZZ_HARNESSES),$(FUZZ_DIR)/run-harness $(FUZZ_BUILD) \
		$(FUZZ_FINDINGS) $(harness) $(FUZZ_SECONDS) $(fuzz_max_len_$(harness)) || failed=1;) \
	exit $$failed
