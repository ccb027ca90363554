# custodian: a key custodian daemon on PKCS#11 tokens.
#
#   make deps       install every Debian package the build, tests and demo use
#   make            build custodiand and custodianctl (warnings are errors)
#   make test       deps + build + every test (unit and integration)
#   make test-asan  the same suite built with ASan and UBSan
#   make demo       a SoftHSM2 token, demo policy and keys, the daemon, round trips
#   make bench      throughput and latency against direct PKCS#11 on the same token

# Every Debian package the project uses, for building, testing and the demo.
DEBS = build-essential pkg-config libp11-dev libp11-kit-dev libssl-dev \
       libpcsclite-dev libyaml-dev libcmocka-dev libjansson-dev softhsm2 \
       opensc openssl pcscd vsmartcard-vpcd vsmartcard-vpicc python3 \
       python3-cryptography clang util-linux procps p11-kit p11-kit-modules \
       openssh-client jq faketime libseccomp-dev passwd

PKGS = libp11 p11-kit-1 jansson yaml-0.1 openssl libpcsclite libseccomp

BUILD ?= build
CC ?= cc
SAN_FLAGS ?=
HARDEN = -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wformat=2 -Wvla -Wno-unused-parameter
CFLAGS ?= -O2 -g
CPPFLAGS += -I. -D_GNU_SOURCE
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = -std=c11 $(WARN) $(HARDEN) $(CFLAGS) $(SAN_FLAGS) $(CPPFLAGS) $(PKG_CFLAGS)
LDFLAGS += -pie -Wl,-z,relro,-z,now $(SAN_FLAGS)
LIBS = $(PKG_LIBS) -lpthread -ldl

MAINS = custodian/custodiand.c custodian/custodianctl.c
LIB_SRCS = $(filter-out $(MAINS),$(wildcard custodian/*.c pkcs11/*.c policy/*.c))
LIB_OBJS = $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRCS = $(wildcard bench/*.c)

all: $(BUILD)/custodiand $(BUILD)/custodianctl

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libcustodian.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/custodiand: $(BUILD)/custodian/custodiand.o $(BUILD)/libcustodian.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/custodianctl: $(BUILD)/custodian/custodianctl.o $(BUILD)/libcustodian.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libcustodian.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/bench/custodian-bench: $(BENCH_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/libcustodian.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Install what is missing; apt-get update first, as on a fresh machine.
deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; BUILD=$(BUILD) $$t; done

# A PKCS#11 module for tests that forwards to SoftHSM2 and injects faults.
$(BUILD)/tests/libfaultp11.so: $(wildcard tests/faultp11/*.c)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ $^ -ldl

integration: all $(if $(wildcard tests/faultp11/*.c),$(BUILD)/tests/libfaultp11.so)
	@BUILD=$(BUILD) tests/integration/run.sh

check: unit integration

test: deps
	$(MAKE) all unit integration fuzz-smoke

test-asan: deps
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" \
	  all unit integration

demo: deps
	$(MAKE) all
	@tests/demo.sh

bench: deps
	$(MAKE) all $(BUILD)/bench/custodian-bench
	@BUILD=$(BUILD) bench/run.sh

clean:
	rm -rf build build-asan

.PHONY: all deps unit integration check test test-asan demo bench clean

# --- fuzzing ---
# libFuzzer harnesses (tests/fuzz/fuzz_*.c) over the library built with
# clang, ASan and UBSan in build-fuzz/.  `make fuzz` runs each harness for
# FUZZ_SECONDS on a copy of its seed corpus; `make fuzz-smoke` (part of
# `make test`) runs each for 10 s after replaying tests/fuzz/regressions/.
# Findings land in build-fuzz/artifacts/<name>/.
DEBS += libclang-rt-14-dev
BUILD_FUZZ = build-fuzz
FUZZ_CC = clang
FUZZ_SECONDS ?= 60
FUZZERS = request policy blob audit_verify stmt
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = -std=c11 $(WARN) $(HARDEN) -O1 -g -fno-omit-frame-pointer \
	      $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(CPPFLAGS) $(PKG_CFLAGS)
FUZZ_BINS = $(FUZZERS:%=$(BUILD_FUZZ)/fuzz_%)

$(BUILD_FUZZ)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(BUILD_FUZZ)/libcustodian.a: $(LIB_SRCS:%.c=$(BUILD_FUZZ)/%.o)
	@rm -f $@
	ar rcs $@ $^

$(BUILD_FUZZ)/fuzz_%: $(BUILD_FUZZ)/tests/fuzz/fuzz_%.o $(BUILD_FUZZ)/libcustodian.a
	$(FUZZ_CC) -pie -Wl,-z,relro,-z,now $(FUZZ_SAN) -fsanitize=fuzzer \
	  -o $@ $^ $(LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: deps
	$(MAKE) fuzz-build
	@BUILD_FUZZ=$(BUILD_FUZZ) FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  tests/fuzz/run.sh $(FUZZERS)

fuzz-smoke: deps
	$(MAKE) fuzz-build
	@BUILD_FUZZ=$(BUILD_FUZZ) FUZZ_SECONDS=10 tests/fuzz/run.sh $(FUZZERS)

fuzz-clean:
	rm -rf $(BUILD_FUZZ)

clean: fuzz-clean

# Keep the harness objects make would otherwise delete as intermediates.
.SECONDARY: $(FUZZERS:%=$(BUILD_FUZZ)/tests/fuzz/fuzz_%.o)
.PHONY: fuzz fuzz-build fuzz-smoke fuzz-clean
# --- end fuzzing ---
