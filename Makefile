# SPDX-License-Identifier: BSD-2-Clause
# request-shadow: one Makefile, every output under .output/ (V=1 shows commands).

OUTPUT    := .output
CC        ?= cc
CLANG     ?= clang
BPFTOOL   ?= bpftool
PREFIX    ?= /usr/local
LIBDIR    ?= $(PREFIX)/lib
DESTDIR   ?=
ARCH      := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

CFLAGS    ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE \
	         -Iinclude -Iuser -I$(OUTPUT) -MMD -MP
LDLIBS    := -lbpf -lelf -lcurl -lhttp_parser -ljansson -lsqlite3 \
	         -lbrotlidec -lzstd -lz -lxxhash -lmicrohttpd -lcap -lm
TEST_LIBS := -lcriterion
# What librequest-shadow needs: no BPF, no capture (the pipeline core brings
# the metrics module, unused by the library, and with it libmicrohttpd).
RS_LIBS   := -lcurl -ljansson -lsqlite3 -lbrotlidec -lzstd -lz -lxxhash -lmicrohttpd \
	     -lm -lpthread

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))
MAINS      := user/shadowd.c user/dump.c
LIB_SRCS   := $(filter-out $(MAINS),$(wildcard user/*.c user/util/*.c))
LIB_OBJS   := $(patsubst %.c,$(OUTPUT)/%.o,$(LIB_SRCS))
LIB        := $(OUTPUT)/libshadow.a
TLIB_SRCS  := $(wildcard tests/lib/*.c)
TLIB_OBJS  := $(patsubst %.c,$(OUTPUT)/%.o,$(TLIB_SRCS))
UNIT_BINS  := $(patsubst %.c,$(OUTPUT)/%,$(wildcard tests/unit/*_test.c))
BPF_BINS   := $(patsubst %.c,$(OUTPUT)/%,$(wildcard tests/bpf/*_test.c))
BENCH_BINS := $(patsubst %.c,$(OUTPUT)/%,$(wildcard tests/bench/*.c))
TOOL_BINS  := $(patsubst %.c,$(OUTPUT)/%,$(wildcard tests/tools/*.c))
FUZZ_SRCS  := $(wildcard tests/fuzz/*_fuzz.c)
FUZZ_BINS  := $(patsubst %.c,$(OUTPUT)/fuzz/%,$(FUZZ_SRCS))
# The binaries are built under .output/ too, with ./shadowd and
# ./shadow-dump as symlinks to them (the README runs ./shadowd); check-asan
# puts its sanitized ones under its own output directory, without links.
BINDIR     ?= $(OUTPUT)
BINS       := $(BINDIR)/shadowd $(BINDIR)/shadow-dump
LINKS      := $(if $(filter $(OUTPUT),$(BINDIR)),shadowd shadow-dump)
PROGS      := $(BINS) $(LINKS)
# librequest-shadow (include/request_shadow.h): the in-process shadower and
# the modules it runs, position-independent, only rs_* exported from the .so.
RS_VERSION := 0.1.0
RS_SONAME  := librequest-shadow.so.0
RS_SRCS    := user/request_shadow.c user/rs_config.c user/rs_http.c user/shadower.c \
	      user/sample.c user/diff.c user/json_diff.c user/jsonpath.c \
	      user/divergence.c user/store.c user/endpoint.c user/message.c \
	      user/util/decode.c user/util/hist.c user/pipeline.c user/tally.c \
	      user/metrics.c user/store_counter.c user/replay.c user/util/loop.c \
	      user/util/dbuf.c user/util/strmap.c user/util/utf8.c user/util/parse.c
RS_OBJS    := $(patsubst %.c,$(OUTPUT)/pic/%.o,$(RS_SRCS))
RS_SO      := $(OUTPUT)/librequest-shadow.so
RS_A       := $(OUTPUT)/librequest-shadow.a
RS_PC      := $(OUTPUT)/request-shadow.pc
RS_TESTS   := $(patsubst %.c,$(OUTPUT)/%,$(wildcard tests/unit/rs_*_test.c))
# Criterion does not start under ThreadSanitizer: the threaded cases are
# plain programs of their own (tests/lib/tap.h), the library's and the
# replayer's. They link the library's archive, which holds replay.c too,
# and objects that need no skeleton, so check-tsan builds nothing of the
# capture.
TSAN_TESTS := .output/tsan/tests/unit/rs_threads_test \
	      .output/tsan/tests/unit/replay_threads_test
PLAIN_OBJS := $(OUTPUT)/tests/lib/tap.o $(OUTPUT)/tests/lib/servers.o \
	      $(OUTPUT)/tests/unit/replay_threads_test.o
EXAMPLES   := $(patsubst %.c,$(OUTPUT)/%,$(wildcard examples/*.c))

.DELETE_ON_ERROR:
.PHONY: all deps test unit-test bpf-test e2e-test demo bench fuzz check-asan \
	    install clean vmlinux test-kernels lib examples check-tsan $(LINKS)
.SECONDARY:

all: $(OUTPUT)/deps.ok $(PROGS) lib

# The library's bench is built with it (run by hand or make bench).
RS_BENCH   := $(OUTPUT)/tests/bench/rs_shadow_bench
lib: $(RS_SO) $(RS_A) $(RS_PC) $(RS_BENCH)

# Installs missing Debian packages; near-instant when all are present.
# Building needs only the build packages; the tests, the demo and the
# benchmarks install theirs (Criterion, nginx, wrk, node, qemu...) first.
deps:
	$(Q)scripts/deps.sh all
$(OUTPUT)/deps.ok: scripts/deps.sh
	$(Q)mkdir -p $(OUTPUT) && scripts/deps.sh build && touch $@
$(OUTPUT)/deps-test.ok: scripts/deps.sh $(OUTPUT)/deps.ok
	$(Q)scripts/deps.sh all && touch $@

$(LINKS): %: $(BINDIR)/%
	$(Q)ln -sfn $(BINDIR)/$* $@

# One CO-RE header for every kernel (the programs' field offsets are
# relocated at load time): regenerate it from this kernel's BTF.
vmlinux:
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h.tmp
	$(Q)mv vmlinux.h.tmp vmlinux.h

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c include/shadow_event.h vmlinux.h | $(OUTPUT)/deps.ok
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -I. -Iinclude -Ibpf \
		-MMD -MP -c $< -o $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# Every user object may include a skeleton (capture.c does).
$(OUTPUT)/user/%.o: user/%.c $(SKELS) | $(OUTPUT)/deps.ok
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUTPUT)/tests/%.o: tests/%.c $(SKELS) | $(OUTPUT)/deps-test.ok
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Itests/lib -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUTPUT)/pic/user/%.o: user/%.c | $(OUTPUT)/deps.ok
	$(call msg,CC-PIC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -fPIC -c $< -o $@

$(OUTPUT)/$(RS_SONAME): $(RS_OBJS) user/librequest-shadow.map
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -shared -Wl,-soname,$(RS_SONAME) \
		-Wl,--version-script=user/librequest-shadow.map $(RS_OBJS) $(RS_LIBS) -o $@

$(RS_SO): $(OUTPUT)/$(RS_SONAME)
	$(Q)ln -sf $(RS_SONAME) $@

$(RS_A): $(RS_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# The .pc names PREFIX and LIBDIR: install writes its own with the ones
# it is given.
RS_PC_SED  = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@VERSION@|$(RS_VERSION)|' -e 's|@LIBS@|$(RS_LIBS)|' user/request-shadow.pc.in
$(RS_PC): user/request-shadow.pc.in Makefile | $(OUTPUT)/deps.ok
	$(call msg,GEN,$@)
	$(Q)$(RS_PC_SED) > $@

# The library's tests link the library itself, as its users do; they need
# no skeleton, so check-tsan builds nothing of the capture.
$(OUTPUT)/tests/unit/rs_%.o: tests/unit/rs_%.c | $(OUTPUT)/deps-test.ok
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Itests/lib -c $< -o $@

$(OUTPUT)/tests/lib/rs_%.o: tests/lib/rs_%.c | $(OUTPUT)/deps-test.ok
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Itests/lib -c $< -o $@

$(OUTPUT)/tests/bench/rs_%.o: tests/bench/rs_%.c | $(OUTPUT)/deps.ok
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUTPUT)/tests/bench/rs_%: $(OUTPUT)/tests/bench/rs_%.o $(RS_A)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(RS_LIBS) -o $@

$(OUTPUT)/tests/unit/rs_%: $(OUTPUT)/tests/unit/rs_%.o $(OUTPUT)/tests/lib/rs_service.o \
		$(OUTPUT)/tests/lib/tap.o $(RS_A)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(RS_LIBS) $(if $(findstring rs_threads,$@),,$(TEST_LIBS)) -o $@

$(PLAIN_OBJS): $(OUTPUT)/%.o: %.c | $(OUTPUT)/deps-test.ok
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Itests/lib -c $< -o $@

$(OUTPUT)/tests/unit/replay_threads_test: $(OUTPUT)/tests/unit/replay_threads_test.o \
		$(OUTPUT)/tests/lib/servers.o $(OUTPUT)/tests/lib/tap.o $(RS_A)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(RS_LIBS) -o $@

$(OUTPUT)/examples/%: examples/%.c $(RS_A)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ $(RS_LIBS) -o $@

examples: $(EXAMPLES)

$(BINDIR)/shadowd: $(OUTPUT)/user/shadowd.o $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BINDIR)/shadow-dump: $(OUTPUT)/user/dump.o $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(OUTPUT)/tests/unit/%: $(OUTPUT)/tests/unit/%.o $(TLIB_OBJS) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) $(TEST_LIBS) -o $@

$(OUTPUT)/tests/bpf/%: $(OUTPUT)/tests/bpf/%.o $(TLIB_OBJS) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) $(TEST_LIBS) -o $@

$(OUTPUT)/tests/bench/%: $(OUTPUT)/tests/bench/%.o $(TLIB_OBJS) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) $(TEST_LIBS) -o $@

$(OUTPUT)/tests/tools/%: $(OUTPUT)/tests/tools/%.o $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

unit-test: $(OUTPUT)/deps-test.ok $(PROGS) $(UNIT_BINS) lib examples
	$(Q)RS_EXAMPLES=$(OUTPUT)/examples tests/run.sh unit $(UNIT_BINS)

# The BPF tests run twice: with the socket-tracepoint data hooks this
# kernel has, and with the syscall-tracepoint ones older kernels get.
BPF_RUNS := $(BPF_BINS) $(addprefix SHADOWD_SYSCALL_HOOKS=1:,$(BPF_BINS))

bpf-test: $(OUTPUT)/deps-test.ok $(PROGS) $(BPF_BINS)
	$(Q)tests/run.sh bpf $(BPF_RUNS)

e2e-test: $(OUTPUT)/deps-test.ok $(PROGS) $(TOOL_BINS)
	$(Q)tests/run.sh e2e $(wildcard tests/e2e/*_test.sh)

# The README's test command: unit (no root), then BPF and end-to-end (root).
test: $(OUTPUT)/deps-test.ok $(PROGS) $(UNIT_BINS) $(BPF_BINS) $(TOOL_BINS) lib examples
	$(Q)tests/run.sh all $(UNIT_BINS) $(BPF_RUNS) $(wildcard tests/e2e/*_test.sh)

# The capture on Debian's 6.1 and 6.12 kernels in qemu, and on the host's.
test-kernels: $(OUTPUT)/deps-test.ok $(PROGS)
	$(Q)SHADOWD=$(BINDIR)/shadowd SHADOW_DUMP=$(BINDIR)/shadow-dump \
		scripts/test-kernels.sh

demo: $(OUTPUT)/deps-test.ok $(PROGS)
	$(Q)scripts/demo.sh

bench: $(OUTPUT)/deps-test.ok $(PROGS) $(BENCH_BINS)
	$(Q)scripts/bench.sh

# Unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer.
check-asan: $(OUTPUT)/deps-test.ok
	$(Q)SHADOW_DUMP=.output/asan/shadow-dump $(MAKE) --no-print-directory \
		OUTPUT=.output/asan BINDIR=.output/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		.output/asan/deps.ok .output/asan/deps-test.ok unit-test

# The threaded tests under ThreadSanitizer (a report fails the run); the
# shadow-dump they call is the ordinary one.
check-tsan: $(OUTPUT)/deps-test.ok $(PROGS) lib examples
	$(Q)$(MAKE) --no-print-directory OUTPUT=.output/tsan \
		CFLAGS="-O1 -g -fsanitize=thread -fno-omit-frame-pointer" \
		$(TSAN_TESTS)
	$(Q)TSAN_OPTIONS="halt_on_error=1 exitcode=66 $${TSAN_OPTIONS:-}" \
		tests/run.sh tsan $(TSAN_TESTS)

# libFuzzer targets (clang, ASan + UBSan): FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	           -std=gnu11 -D_GNU_SOURCE -Iinclude -Iuser -I$(OUTPUT)
FUZZ_LIB_SRCS := $(filter-out user/capture.c,$(LIB_SRCS))
$(OUTPUT)/fuzz/tests/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRCS) | $(OUTPUT)/deps-test.ok
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $< $(FUZZ_LIB_SRCS) $(LDLIBS) -o $@
fuzz: $(FUZZ_BINS)
	$(Q)scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

install: $(BINS) lib
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man3 $(DESTDIR)$(PREFIX)/include \
		$(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 0755 $(OUTPUT)/$(RS_SONAME) $(DESTDIR)$(LIBDIR)/$(RS_SONAME)
	ln -sf $(RS_SONAME) $(DESTDIR)$(LIBDIR)/librequest-shadow.so
	install -m 0644 $(RS_A) $(DESTDIR)$(LIBDIR)/
	install -m 0644 include/request_shadow.h $(DESTDIR)$(PREFIX)/include/
	$(RS_PC_SED) > $(DESTDIR)$(LIBDIR)/pkgconfig/request-shadow.pc
	install -m 0644 docs/request_shadow.3 $(DESTDIR)$(PREFIX)/share/man/man3/
	install -m 0755 $(BINDIR)/shadowd $(DESTDIR)$(PREFIX)/sbin/shadowd
	install -m 0755 $(BINDIR)/shadow-dump $(DESTDIR)$(PREFIX)/bin/shadow-dump
	install -m 0644 docs/shadowd.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 docs/shadow-dump.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -D -m 0644 docs/shadowd.service \
		$(DESTDIR)$(PREFIX)/share/doc/request-shadow/examples/shadowd.service

clean:
	rm -rf $(OUTPUT) shadowd shadow-dump

-include $(shell find $(OUTPUT) -name '*.d' 2>/dev/null)
