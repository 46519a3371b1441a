# disque-server: every target installs the Debian packages it needs first, then
# configures and builds in its own build directory.
#
#   make run        build and start the server on 127.0.0.1:7711
#   make test       build and run every test
#   make test-asan  the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-tsan  the same under ThreadSanitizer
#   make bench      build and run the micro-benchmarks, the AOF script and the comparison
#                   with Redis (bench/load/compare; installs redis-server)
#   make fuzz       build the libFuzzer targets with clang and run each for FUZZ_SECONDS
#   make chaos      the cluster chaos test for CHAOS_SECONDS (ctest runs a short one)
#   make soak       mixed load with random disconnects for SOAK_SECONDS, then checks that
#                   no acknowledged job was lost and memory came back (tests/soak/soak.py)
#   make install    the binary, man page, sample config and systemd unit under PREFIX
#                   (default /usr/local; DESTDIR for staging)
#   make cluster    three daemonized nodes on 127.0.0.1 (CLUSTER_PORTS), joined into a
#                   cluster, their files in CLUSTER_DIR; `make cluster-stop` stops them

JOBS ?= $(shell nproc)
PORT ?= 7711
CTEST_FLAGS ?= --output-on-failure --timeout 600 -j $(JOBS)
FUZZ_SECONDS ?= 60
CHAOS_SECONDS ?= 300
SOAK_SECONDS ?= 600
PREFIX ?= /usr/local
INSTALL_FROM ?= build
CLUSTER_PORTS ?= 7712 7713 7714
CLUSTER_DIR ?= build/cluster
# The binary `make cluster` starts; set it to skip the build (the tests do).
DISQUE_SERVER ?= build/disque-server

PACKAGES := cmake make g++ pkg-config libasio-dev libspdlog-dev libfmt-dev libcli11-dev \
            libgtest-dev libgmock-dev libbenchmark-dev libhiredis-dev redis-tools python3-redis \
            python3-yaml
# Only `make bench` needs this: the yardstick of bench/load/compare.
BENCH_PACKAGES := redis-server
# Only `make fuzz` needs these: clang and its libFuzzer runtime.
FUZZ_PACKAGES := clang libclang-rt-dev

.PHONY: all deps build run test test-asan test-tsan bench fuzz chaos soak install cluster cluster-stop clean

all: build

# Installs whatever of PACKAGES is missing: as root directly, otherwise through sudo.
deps:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing Debian packages:" $$missing; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	  else echo "error: these packages are missing and installing them needs root or sudo:" $$missing >&2; exit 1; fi; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing || \
	    { echo "error: apt-get could not install:" $$missing >&2; exit 1; }; \
	fi

# $(call configure_and_build,<dir>,<extra cmake flags>)
define configure_and_build
	cmake -S . -B $(1) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(2) >/dev/null
	cmake --build $(1) -j $(JOBS)
endef

build: deps
	$(call configure_and_build,build,)

run: build
	./build/disque-server --bind 127.0.0.1 --port $(PORT)

test: build
	cd build && ctest $(CTEST_FLAGS)

test-asan: deps
	$(call configure_and_build,build-asan,-DDISQUE_SANITIZE=address -DDISQUE_BUILD_BENCH=OFF)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest $(CTEST_FLAGS)

test-tsan: deps
	$(call configure_and_build,build-tsan,-DDISQUE_SANITIZE=thread -DDISQUE_BUILD_BENCH=OFF)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest $(CTEST_FLAGS)

chaos: build
	cd build && CHAOS_SECONDS=$(CHAOS_SECONDS) ./tests/cluster_chaos_test

# The system interpreter: python3-redis is installed for it (another python3 may come
# first on PATH).
soak: build
	/usr/bin/python3 tests/soak/soak.py --server build/disque-server --seconds $(SOAK_SECONDS)

# Installs what `make` built (from INSTALL_FROM, the build tree); it does not build, so
# that `sudo make install` leaves no root-owned files in it but install_manifest.txt.
install:
	@test -x "$(INSTALL_FROM)/disque-server" || { echo "error: build first with 'make' (then 'sudo make install')" >&2; exit 1; }
	DESTDIR="$(DESTDIR)" cmake --install "$(INSTALL_FROM)" --prefix "$(PREFIX)"

# Each node is a daemon with its pidfile, log, AOF and nodes.conf in CLUSTER_DIR/<port>;
# docker/cluster-join.sh waits for them and sends the CLUSTER MEETs (compose uses it too).
cluster: $(if $(filter build/disque-server,$(DISQUE_SERVER)),build)
	@for port in $(CLUSTER_PORTS); do \
	  mkdir -p "$(CLUSTER_DIR)/$$port" && \
	  "$(DISQUE_SERVER)" --port $$port --bind 127.0.0.1 --dir "$(CLUSTER_DIR)/$$port" --daemonize yes \
	    --pidfile disque.pid --logfile disque.log --appendonly yes || exit 1; \
	done
	@docker/cluster-join.sh $(foreach port,$(CLUSTER_PORTS),127.0.0.1:$(port)) || \
	  { for port in $(CLUSTER_PORTS); do echo "--- $(CLUSTER_DIR)/$$port/disque.log"; \
	    tail -n 5 "$(CLUSTER_DIR)/$$port/disque.log"; done; exit 1; }
	@echo "Cluster up on ports $(CLUSTER_PORTS) (files in $(CLUSTER_DIR)); stop it with: make cluster-stop"

# A daemonized node removes its pidfile as it exits: wait for that (10 s at most).
cluster-stop:
	@for port in $(CLUSTER_PORTS); do redis-cli -p $$port SHUTDOWN >/dev/null 2>&1 || true; done
	@for port in $(CLUSTER_PORTS); do \
	  n=0; while [ -e "$(CLUSTER_DIR)/$$port/disque.pid" ] && [ $$n -lt 100 ]; do sleep 0.1; n=$$((n + 1)); done; \
	  if [ -e "$(CLUSTER_DIR)/$$port/disque.pid" ]; then echo "error: the node on port $$port did not stop" >&2; exit 1; fi; \
	done
	@echo "Stopped the nodes on ports $(CLUSTER_PORTS)"

bench: build
	@$(MAKE) --no-print-directory deps PACKAGES="$(BENCH_PACKAGES)"
	./build/bench/resp_bench
	./build/bench/engine_bench
	./build/bench/structures_bench
	bench/aof/aof_bench.sh build/disque-server
	bench/load/compare --server build/disque-server --tool build/bench/disque-benchmark

# libFuzzer under ASan+UBSan (tests/fuzz/CMakeLists.txt): every target of FUZZ_TARGETS
# is built, then each runs for FUZZ_SECONDS, JOBS of them at a time (their output is
# shown as each one finishes), and the first finding fails `make fuzz`. Each run starts
# from a copy of the committed seed corpus, so what the fuzzer adds stays in
# build-fuzz/corpus/; a failing input is written to build-fuzz/ as
# <target>-crash-<sha1> (or -timeout-, -oom-, -leak-): replay it with the
# <target>_fuzz_replay binary of any build.
FUZZ_TARGETS := bus_message resp_request config_file job_id aof

fuzz: deps
	@$(MAKE) --no-print-directory deps PACKAGES="$(FUZZ_PACKAGES)"
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DDISQUE_FUZZ=ON -DDISQUE_BUILD_BENCH=OFF >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target $(FUZZ_TARGETS:%=%_fuzz)
	rm -rf build-fuzz/corpus && mkdir -p build-fuzz/corpus
	@$(MAKE) --no-print-directory -j $(JOBS) --output-sync=target $(FUZZ_TARGETS:%=fuzz-run-%)

# One target's run (`make fuzz` runs them all), with its dictionary if it has one
# (tests/fuzz/<target>.dict).
fuzz-run-%:
	cp -r tests/fuzz/corpus/$* build-fuzz/corpus/
	./build-fuzz/tests/fuzz/$*_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=30 \
	  $(if $(wildcard tests/fuzz/$*.dict),-dict=tests/fuzz/$*.dict) -print_final_stats=1 \
	  -artifact_prefix=build-fuzz/$*- build-fuzz/corpus/$*

clean:
	rm -rf build build-asan build-tsan build-fuzz
