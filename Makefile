# edgegate - build, test, demo, bench.
#
#   make            build/edgegated build/edgegatectl build/edgegate.bpf.o
#   make deps       install what building and testing need (idempotent)
#   make test       deps + build + every test (unit under ASan/UBSan, BPF, fuzz smoke, integration)
#   make demo       the protected sample app with a local OpenID Provider, nginx and the gate
#   make bench      tools/bench
#
# Each step is one rule. Userspace modules are userspace/<concern>/*.c (core, http, authz,
# jose, oidc, session, enforce: see README "Layout"); every module but core/main.c goes
# into a static library that the daemon, edgegatectl and the tests link.

CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
BUILD    := build

WARN     := -Wall -Wextra -Werror -Wno-unused-parameter -Wformat=2 -Wvla
USP_DIRS := $(sort $(patsubst %/,%,$(dir $(wildcard userspace/*/*.c userspace/*/*.h))))
CPPFLAGS := -D_GNU_SOURCE -Iinclude $(addprefix -I,$(USP_DIRS)) -I$(BUILD)
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARN) -fno-strict-aliasing -fstack-protector-strong -D_FORTIFY_SOURCE=2
LDLIBS   := -lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lxdp -lbpf -lelf -lz -llmdb -lhiredis -lcap -lpthread -lm -licuuc \
	    -lsimdjson -lstdc++
# C++ only where a library is C++ (userspace/jose/json_fast.cc: simdjson behind a C API);
# its sanitizer builds skip -fsanitize=vptr (that check needs the C++ UBSan runtime at link)
CLANGXX  ?= clang++
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=gnu++17 $(WARN) -fno-strict-aliasing -fstack-protector-strong -D_FORTIFY_SOURCE=2

SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ASAN_CFLAGS := -O1 -g -std=gnu11 $(WARN) -fno-strict-aliasing $(SAN)
ASAN_CXXFLAGS := -O1 -g -std=gnu++17 $(WARN) -fno-strict-aliasing $(SAN) -fno-sanitize=vptr

LIB_SRCS  := $(filter-out userspace/core/main.c,$(wildcard userspace/*/*.c))
LIB_CXX_SRCS := $(wildcard userspace/*/*.cc)
CTL_SRCS  := $(wildcard tools/edgegatectl/*.c)
TEST_SRCS := $(wildcard tests/unit/test_*.c)
BPFT_SRCS := $(wildcard tests/bpf/test_*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
BPF_SRCS  := $(wildcard bpf/*.bpf.c)
HDRS      := $(wildcard userspace/*/*.h include/edgegate/*.h bpf/*.h)

LIB_OBJS      := $(LIB_SRCS:userspace/%.c=$(BUILD)/obj/%.o) $(LIB_CXX_SRCS:userspace/%.cc=$(BUILD)/obj/%.o)
ASAN_LIB_OBJS := $(LIB_SRCS:userspace/%.c=$(BUILD)/asan/obj/%.o) $(LIB_CXX_SRCS:userspace/%.cc=$(BUILD)/asan/obj/%.o)
UNIT_TESTS    := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/asan/tests/%)
BPF_TESTS     := $(BPFT_SRCS:tests/bpf/%.c=$(BUILD)/asan/tests/%)
FUZZERS       := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
SKEL          := $(BUILD)/edgegate.skel.h

.PHONY: all deps test unit fuzz demo bench clean asan install print-cppflags
all: $(BUILD)/edgegated $(BUILD)/edgegatectl $(BUILD)/edgegate.bpf.o

deps:
	@tools/deps.sh

# tools/bench scripts compile against the library with the same include path
print-cppflags:
	@echo $(CPPFLAGS)

# --- BPF ---------------------------------------------------------------------
$(BUILD)/edgegate.bpf.o: bpf/edgegate.bpf.c $(wildcard bpf/*.h) include/edgegate/abi.h | $(BUILD)
	$(CLANG) -target bpf -O2 -g -Wall -Werror -Iinclude -Ibpf \
		-I/usr/include/$(shell uname -m)-linux-gnu -c $< -o $@

$(SKEL): $(BUILD)/edgegate.bpf.o
	$(BPFTOOL) gen skeleton $< name edgegate_bpf > $@.tmp && mv $@.tmp $@

# --- userspace ---------------------------------------------------------------
$(BUILD)/obj/%.o: userspace/%.c $(HDRS) | $(BUILD)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: userspace/%.cc $(HDRS) | $(BUILD)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/libedgegate.a: $(LIB_OBJS)
	ar rcs $@ $^

$(BUILD)/edgegated: $(BUILD)/obj/core/main.o $(BUILD)/libedgegate.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/edgegatectl: $(CTL_SRCS) $(BUILD)/libedgegate.a $(HDRS)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itools/edgegatectl -o $@ $(CTL_SRCS) $(BUILD)/libedgegate.a $(LDLIBS)

# only the gate embeds the BPF object (skeleton)
$(BUILD)/obj/enforce/gate.o $(BUILD)/asan/obj/enforce/gate.o $(BUILD)/obj/enforce/gate_xdp.o $(BUILD)/asan/obj/enforce/gate_xdp.o: $(SKEL)

# --- sanitizer build (tests and the daemon the integration tests run) ---------
$(BUILD)/asan/obj/%.o: userspace/%.c $(HDRS) | $(BUILD)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) -c $< -o $@

$(BUILD)/asan/obj/%.o: userspace/%.cc $(HDRS) | $(BUILD)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(ASAN_CXXFLAGS) -c $< -o $@

$(BUILD)/asan/libedgegate.a: $(ASAN_LIB_OBJS)
	ar rcs $@ $^

$(BUILD)/asan/edgegated: $(BUILD)/asan/obj/core/main.o $(BUILD)/asan/libedgegate.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/asan/edgegatectl: $(CTL_SRCS) $(BUILD)/asan/libedgegate.a $(HDRS)
	$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) -Itools/edgegatectl -o $@ $(CTL_SRCS) $(BUILD)/asan/libedgegate.a $(LDLIBS)

$(BUILD)/asan/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/asan/libedgegate.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/unit $(ASAN_CFLAGS) -o $@ $< $(BUILD)/asan/libedgegate.a $(LDLIBS) -lcmocka

$(BUILD)/asan/tests/%: tests/bpf/%.c $(wildcard tests/bpf/*.h tests/unit/*.h) $(BUILD)/asan/libedgegate.a $(BUILD)/edgegate.bpf.o
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/unit -Itests/bpf $(ASAN_CFLAGS) -o $@ $< $(BUILD)/asan/libedgegate.a $(LDLIBS) -lcmocka

# sessions made by the daemon's own session module, for tests that need hundreds
# (tests/integration/reconnect_storm.t.mjs) and for the multinode bench (its own -O2 build)
$(BUILD)/asan/mksessions: tools/bench/mksessions.c $(BUILD)/asan/libedgegate.a $(HDRS)
	$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) -o $@ $< $(BUILD)/asan/libedgegate.a $(LDLIBS)

asan: $(BUILD)/asan/edgegated $(BUILD)/asan/edgegatectl $(BUILD)/asan/mksessions $(UNIT_TESTS) $(BPF_TESTS)

# --- fuzzing (libFuzzer via clang) --------------------------------------------
# The library is compiled once with coverage instrumentation; each target links it.
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -O1 -g -std=gnu11 $(FUZZ_SAN) $(CPPFLAGS) -Wall -Wno-unused-parameter
FUZZ_CXXFLAGS := -O1 -g -std=gnu++17 $(FUZZ_SAN) -fno-sanitize=vptr $(CPPFLAGS) -Wall -Wno-unused-parameter
FUZZ_LIB_OBJS := $(LIB_SRCS:userspace/%.c=$(BUILD)/fuzz/obj/%.o) $(LIB_CXX_SRCS:userspace/%.cc=$(BUILD)/fuzz/obj/%.o)
$(BUILD)/fuzz/obj/%.o: userspace/%.c $(HDRS) | $(BUILD)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(BUILD)/fuzz/obj/%.o: userspace/%.cc $(HDRS) | $(BUILD)
	@mkdir -p $(@D)
	$(CLANGXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(BUILD)/fuzz/obj/enforce/gate.o $(BUILD)/fuzz/obj/enforce/gate_xdp.o: $(SKEL)
$(BUILD)/fuzz/libedgegate.a: $(FUZZ_LIB_OBJS)
	ar rcs $@ $^
$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/fuzz/libedgegate.a
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/fuzz/libedgegate.a $(LDLIBS)

fuzz: $(FUZZERS)
	@for f in $(FUZZERS); do n=$$(basename $$f); mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	  $$f -max_total_time=$${FUZZ_SECONDS:-60} $(BUILD)/fuzz/corpus-$$n tests/fuzz/seeds/$$n || exit 1; done

# --- tests ------------------------------------------------------------------------
test: deps
	$(MAKE) all asan $(FUZZERS)
	tests/run.sh

unit: asan
	tests/run.sh unit

demo: deps all
	tools/demo/run.sh

bench: deps all
	tools/bench/run.sh

# --- install (binaries, nginx snippets, systemd unit, docs) -------------------------
PREFIX  ?= /usr/local
DESTDIR ?=
install: all
	install -D -m 0755 $(BUILD)/edgegated $(DESTDIR)$(PREFIX)/sbin/edgegated
	install -D -m 0755 $(BUILD)/edgegatectl $(DESTDIR)$(PREFIX)/bin/edgegatectl
	install -D -m 0755 tools/mtls/edgegate-mtls $(DESTDIR)$(PREFIX)/bin/edgegate-mtls
	install -d -m 0755 $(DESTDIR)/etc/edgegate/nginx
	install -m 0644 tools/nginx/*.conf $(DESTDIR)/etc/edgegate/nginx/
	install -D -m 0644 tools/caddy/Caddyfile $(DESTDIR)/etc/edgegate/caddy/Caddyfile
	install -D -m 0644 tools/traefik/edgegate.yml $(DESTDIR)/etc/edgegate/traefik/edgegate.yml
	install -D -m 0644 tools/envoy/edgegate.yaml $(DESTDIR)/etc/edgegate/envoy/edgegate.yaml
	# the unit names the binaries and docs under PREFIX (it is written for /usr/local)
	install -d -m 0755 $(DESTDIR)/etc/systemd/system
	sed 's|/usr/local/|$(PREFIX)/|g' tools/systemd/edgegated.service > $(DESTDIR)/etc/systemd/system/edgegated.service
	chmod 0644 $(DESTDIR)/etc/systemd/system/edgegated.service
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share/doc/edgegate
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/edgegate/
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share/doc/edgegate/providers
	install -m 0644 docs/providers/*.md $(DESTDIR)$(PREFIX)/share/doc/edgegate/providers/

$(BUILD):
	mkdir -p $(BUILD)

clean:
	rm -rf $(BUILD)
