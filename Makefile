# sluice: make | make test | make check | make demo | make bench | make clean
#
# Every .c under common/ producers/ transformers/ loaders/ lookups/ cli/ (but
# cli/main.c) goes into build/libsluice.a, which the binary, the unit tests
# and the benchmarks link. New files need no Makefile change.

BUILD   ?= build
CC      ?= cc
PKGS    := rdkafka libcurl jansson libpq libmicrohttpd libxml-2.0 lua5.4
WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wcast-qual -Wwrite-strings -Wformat=2 \
           -Wvla -Wimplicit-fallthrough
CFLAGS  ?= -O2 -g
CPPFLAGS_ALL := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
           -Icommon -Icli -Iproducers -Itransformers -Iloaders -Ilookups \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS_ALL := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
ifeq ($(SAN),1)
CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
           -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(WERROR),1)
WARN    += -Werror
endif

LIB_SRCS := $(filter-out cli/main.c, \
            $(wildcard common/*.c producers/*.c transformers/*.c \
                       loaders/*.c lookups/*.c cli/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
FIX_SRCS := $(wildcard tests/fixtures/*.c)
FIX_OBJS := $(FIX_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all test check demo bench clean deps format format-check unit-bins \
        run-tests reliability fuzz soak up down docs FORCE

# `sluice --version`, sluice_info's version label: git describe when this
# is a clone, "unknown" otherwise; `make SLUICE_VERSION=...` overrides (the
# image build does, having no .git). Only sl_version.o gets the define, and
# $(BUILD)/VERSION changes, rebuilding it, only when the version does.
ifeq ($(origin SLUICE_VERSION),undefined)
SLUICE_VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
endif
SLUICE_VERSION_Q := $(subst ",,$(subst ',,$(SLUICE_VERSION)))
$(BUILD)/VERSION: FORCE
	@mkdir -p $(BUILD)
	@echo '$(SLUICE_VERSION_Q)' | cmp -s - $@ || echo '$(SLUICE_VERSION_Q)' >$@
$(BUILD)/common/sl_version.o: $(BUILD)/VERSION
$(BUILD)/common/sl_version.o: CPPFLAGS_ALL += -DSLUICE_VERSION='"$(SLUICE_VERSION_Q)"'
FORCE:

all: $(BUILD)/sluice $(BUILD)/sluice-fixture $(UNIT_BINS)

# compile jobs for the builds that `make test` starts itself
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

deps:
	@scripts/install-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS) $(WARN) -MMD -MP -c $< -o $@

$(BUILD)/libsluice.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/sluice: $(BUILD)/cli/main.o $(BUILD)/libsluice.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/sluice-fixture: $(FIX_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/tap.h $(BUILD)/libsluice.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -Itests/unit $(CFLAGS) $(WARN) $(LDFLAGS) \
	    -o $@ $< $(BUILD)/libsluice.a $(LDLIBS_ALL)

# The README's test command, and CI's: installs what is missing; builds the
# project twice, plain (build/) and with ASan + UBSan + -Werror
# (build-check/); runs the whole suite, integration tests included, on the
# sanitized build, where any sanitizer report from any process fails its
# test, and the plain build's unit tests besides. tests/run.sh starts the
# throwaway PostgreSQL clusters and fixture API servers, runs two tests at a
# time (SLUICE_TEST_JOBS), stops everything and prints "N passed, N failed".
# The whole suite on the plain build alone: tests/run.sh build
test: deps
	$(MAKE) -j$(JOBS) all
	$(MAKE) -j$(JOBS) BUILD=build-check SAN=1 WERROR=1 all
	SLUICE_SANITIZED=1 SLUICE_ALSO_UNITS=$(BUILD) \
	    SLUICE_ALSO_PLAIN="test_faults_retention test_pipeline_kev" \
	    tests/run.sh build-check

# make test, then formatting
check: test
	$(MAKE) format-check

FORMAT_FILES = $(wildcard common/*.[ch] producers/*.[ch] transformers/*.[ch] \
                          loaders/*.[ch] lookups/*.[ch] cli/*.[ch] \
                          tests/unit/*.[ch] \
                          tests/fixtures/*.[ch])
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && \
	    echo "format: $(words $(FORMAT_FILES)) files clean"

demo: deps
	$(MAKE) all
	scripts/demo.sh $(BUILD)

bench: deps
	$(MAKE) all
	tests/bench/run.sh $(BUILD)

# libFuzzer targets (tests/fuzz/), FUZZ_SECONDS each (default 20), FUZZ_JOBS
# at once (default: one per CPU); a crash
# fails and its input joins tests/fuzz/corpus/<target>/.
fuzz: deps
	tests/fuzz/run.sh

# Fault injection, valgrind and a short fuzz run; prints the figures.
reliability: deps
	$(MAKE) all
	scripts/reliability.sh $(BUILD)

# The pipeline left running with faults (SOAK_MINUTES, default 10): the
# workers' memory, descriptors and threads over time, and the tables at
# the end; writes bench/soak.md.
soak: deps
	$(MAKE) all
	scripts/soak.sh $(BUILD)

# The generated parts of docs/ (metrics.md's metric table, sources.md's
# option reference), rewritten from the code; test_docs fails when the
# committed docs differ from what this writes.
docs: $(BUILD)/sluice
	scripts/gen-docs.sh $(BUILD)/sluice docs

# The docker compose stack (docker-compose.yml) kept up to explore: builds
# the image stamped with this version, starts Kafka, PostgreSQL and the
# workers, and prints what to export to reach them from the host. `make
# down` stops it; the volumes (Kafka's raw topics, the tables) stay, as
# with `docker compose down` (COMPOSE_DOWN_FLAGS=-v drops them too).
# COMPOSE names the tool: `docker compose` (v2) when present, else
# docker-compose (v1).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo 'docker compose' || echo docker-compose)
COMPOSE_DOWN_FLAGS ?=
up:
	SLUICE_VERSION='$(SLUICE_VERSION_Q)' $(COMPOSE) -f docker-compose.yml up -d --build
	@echo
	@echo 'sluice is up (make down stops it). To use it from this shell:'
	@echo
	@echo '  export SLUICE_BROKERS=localhost:29092 PGHOST=localhost PGPORT=5432 \'
	@echo '         PGUSER=sluice PGPASSWORD=$${POSTGRES_PASSWORD:-sluice} PGDATABASE=sluice'
	@echo '  $(BUILD)/sluice status'
	@echo
	@echo 'or without a local build: $(COMPOSE) run --rm cli status'

down:
	$(COMPOSE) -f docker-compose.yml down $(COMPOSE_DOWN_FLAGS)

clean:
	rm -rf build build-check build-fuzz

-include $(LIB_OBJS:.o=.d) $(FIX_OBJS:.o=.d) $(BUILD)/cli/main.d
