# hull — build, demo, tests and benchmarks. Run as root on Debian 12; `make run` and `make test` install what they need.
SHELL := /bin/bash
CARGO ?= cargo
BUILD := build
# hull is linked statically and without PIE (README, "Performance"): no dynamic loader, no libc.so to map and
# relocate on each exec, and a parked init without relocated pages. The flags reach the target only (an explicit
# target), so the proc-macro crates still build for the host. Every cargo command that builds or tests hull goes
# through $(HULL_CARGO) (scripts that call cargo get $(HULL_ENV)) so that tests run the same binary.
TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
HULL_ENV = CARGO_BUILD_TARGET=$(TRIPLE) \
	CARGO_TARGET_$(shell echo '$(TRIPLE)' | tr a-z- A-Z_)_RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static'
HULL_CARGO = $(HULL_ENV) $(CARGO)
HULL := target/$(TRIPLE)/release/hull
CHECKER := integration/target/release/checker
CONFORMANCE := integration/target/release/conformance
ROOTFS := $(BUILD)/rootfs
I386_PROBE := $(BUILD)/i386-probe
BENCH := integration/target/release/bench
FLOOR := $(BUILD)/floor
# The runtimes every benchmark compares (crun refuses hybrid cgroup hosts: the bench reports it skipped there).
BENCH_RUNTIMES = --rootfs $(ROOTFS) --runtime hull=$(HULL) --runtime runc=$$(command -v runc)
APT_PACKAGES := busybox-static runc crun jq procps uidmap gcc libc6-dev strace
# The engines test-clients drives, and what its CRI client needs (cri-tools is not in Debian 12).
CLIENT_PACKAGES := containerd podman conmon docker.io python3-grpcio python3-protobuf protobuf-compiler
# Prefix of each lane of `make test`: prints how long the lane took.
LANE = tools/lane.sh $@ env
export HULL_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

.PHONY: all deps client-deps build checker rootfs criu run test test-unit check-preseal test-kernel test-host test-clients speed-guard conformance \
	conformance-runc bench bench-v2 fuzz torture lint clean

all: build

# Install the Debian packages in $(1) that are missing. Services are not started (see tools/apt-install.sh).
apt_install = tools/apt-install.sh $(1)

# Install the Debian packages the build, the tests and the benchmark need (only those missing).
deps:
	@$(call apt_install,$(APT_PACKAGES))
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup)" >&2; exit 1; }

client-deps:
	@$(call apt_install,$(CLIENT_PACKAGES))

build:
	$(HULL_CARGO) build --release

# The conformance checker and the benchmark are a separate, statically linked workspace (see integration/README.md).
checker:
	cd integration && $(CARGO) build --release

# The busybox root filesystem shared by the demo, the tests and the benchmark (checker and i386 probe included).
rootfs: deps checker $(I386_PROBE)
	bundles/mkrootfs.sh $(ROOTFS) $(CHECKER) $(I386_PROBE)

# A static 32-bit program the seccomp tests run (tests/fixtures/i386-probe.S), assembled with binutils.
$(I386_PROBE): tests/fixtures/i386-probe.S
	@mkdir -p $(BUILD)
	as --32 -o $@.o $< && ld -m elf_i386 -static -o $@ $@.o && rm -f $@.o

run: deps build rootfs
	@mkdir -p $(BUILD)/demo && cp bundles/demo/config.json $(BUILD)/demo/config.json
	$(HULL) --root $(BUILD)/state run --bundle $(BUILD)/demo demo-$$$$

test: deps build rootfs criu lint test-unit check-preseal test-kernel conformance conformance-runc test-clients speed-guard test-host

# Unit tests, including the config.json property tests (src/fuzz.rs) at 2000 cases each.
test-unit:
	$(LANE) $(HULL_CARGO) test --release --bins

# The code hull runs before the C library starts must not call into it (tools/check-preseal.sh).
check-preseal:
	$(LANE) $(HULL_ENV) tools/check-preseal.sh

# The config.json property tests for longer: FUZZ_CASES cases per generator (about 4 minutes at the default).
FUZZ_CASES ?= 2000000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(HULL_CARGO) test --release --bins fuzz

test-kernel: criu
	$(LANE) HULL_TEST_ROOTFS=$(CURDIR)/$(ROOTFS) $(HULL_CARGO) test --release --test '*' -- --test-threads=2

# CRIU 4.1 for the checkpoint tests (Debian 12's 3.17 cannot dump on kernels >= 6.13): a Debian trixie tree built
# once with mmdebstrap and cached in /var/cache/hull-criu, run through build/criu/criu (see tools/criu.sh).
criu:
	@tools/criu.sh $(BUILD)/criu/criu

# The fault sweep of tests/faults.rs at every kill point (make test samples 100 per command): hull SIGKILLed at each
# syscall of create, run, start, exec and delete, then delete --force must leave nothing.
torture: deps build rootfs
	HULL_FAULT_POINTS=all HULL_TEST_ROOTFS=$(CURDIR)/$(ROOTFS) $(HULL_CARGO) test --release --test faults -- --test-threads=2

conformance: build rootfs
	$(LANE) $(CONFORMANCE) --runtime $(CURDIR)/$(HULL) --rootfs $(ROOTFS)

# The same suite against runc checks the tests themselves. runc 1.1.5 (Debian 12) ignores `domainname`
# (added in runc 1.2) and overrides a tmpfs `mode=` on an existing directory (runc#3911, fixed in 1.1.8).
conformance-runc: deps rootfs
	$(LANE) $(CONFORMANCE) --runtime runc --rootfs $(ROOTFS) --known-failures domainname,tmpfs-mode-over-directory

# The kernel tests again inside the project's guest: Debian 12 booted with systemd and only cgroup v2 (this host is
# hybrid and has no systemd). tools/vm.sh builds the guest from Debian's packages on first use (about 2 minutes) and
# caches it in /var/cache/hull-vm.
test-host: build rootfs
	$(LANE) HULL=$(HULL) $(HULL_ENV) tools/test-host.sh

# containerd (ctr and CRI), podman and docker run containers through hull and through runc: private daemons, images
# built here from a clean busybox rootfs (tools/test-clients.sh).
test-clients: deps client-deps build checker criu
	bundles/mkrootfs.sh $(BUILD)/clients-rootfs $(CHECKER)
	$(LANE) PATH=$(CURDIR)/$(BUILD)/criu:$$PATH tools/test-clients.sh $(HULL) $(BUILD)/clients-rootfs

# Speed cannot silently rot: `run /bin/true` must stay within half of runc's time, measured interleaved in one run.
speed-guard: deps build rootfs
	$(LANE) $(BENCH) $(BENCH_RUNTIMES) --only run --quick --guard-run 0.5

# The floor: the bundle's kernel work in a small static C program, no runtime (bench/README.md).
$(FLOOR): bench/floor.c
	@mkdir -p $(BUILD)
	gcc -O2 -Wall -static -o $@ bench/floor.c

# Every workload of issue 8 against runc (and crun where it runs) and the floor, and checkpoint + restore against
# runc with the same CRIU wrapper first on PATH: a table on stdout and in $(BUILD)/bench/results.md, the raw samples
# in $(BUILD)/bench/results.json. Then the systemd path in the project's guest (tools/bench-v2.sh --systemd-only):
# `run` with --systemd-cgroup for hull, runc and crun, in $(BUILD)/bench/results-systemd.md. A few minutes, and the
# guest's first build (about 3 minutes).
bench: deps build rootfs checker criu $(FLOOR)
	@mkdir -p $(BUILD)/bench
	PATH=$(CURDIR)/$(BUILD)/criu:$$PATH $(BENCH) $(BENCH_RUNTIMES) --runtime crun=$$(command -v crun) --floor $(FLOOR) --scale 1000 --targets \
	  --out $(BUILD)/bench/results.json --markdown $(BUILD)/bench/results.md
	HULL=$(HULL) tools/bench-v2.sh --systemd-only $(BUILD)/bench/results

# Every workload inside the project's pure cgroup v2 guest, where crun runs too, then the systemd path
# (tools/bench-v2.sh): $(BUILD)/bench/results-v2.md and results-v2-systemd.md.
bench-v2: deps build rootfs $(FLOOR)
	@mkdir -p $(BUILD)/bench
	HULL=$(HULL) tools/bench-v2.sh $(BUILD)/bench/results-v2

# Formatting, clippy with every warning an error and every unsafe block's SAFETY comment required, and the structure
# rules (tools/check-structure.sh: at most 800 lines of non-test code a file, no import cycle between modules).
lint: deps
	$(CARGO) fmt --all -- --check
	$(LANE) $(HULL_CARGO) clippy --release --all-targets -- -D warnings -W clippy::undocumented_unsafe_blocks
	tools/check-structure.sh

clean:
	$(CARGO) clean
	rm -rf $(BUILD) integration/target
