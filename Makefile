# Atoll: `make run` serves the demo tenants, `make test` runs every test, `make bench` measures.
# Both install what is missing on a fresh Debian machine with rustup: cmake (through apt-get when
# running as root) and the wasm32-wasip2 target.

CARGO ?= cargo
# Always tenants/target, whatever CARGO_TARGET_DIR says: tests and configs read the components there.
TENANTS_OUT := tenants/target/wasm32-wasip2/release
ATOLL := target/debug/atoll

.PHONY: run test bench fuzz setup tenants build lint fmt clean

run: setup tenants build
	@echo
	@echo "Atoll is starting: proxy on http://127.0.0.1:8080, admin on http://127.0.0.1:8081"
	@echo "Try, from another terminal:"
	@echo "  curl http://127.0.0.1:8080/hello"
	@echo "  curl -X POST 'http://127.0.0.1:8080/echo/path?q=1' -d 'hi there'"
	@echo "  curl http://127.0.0.1:8081/metrics"
	@echo
	$(ATOLL) serve --config config/atoll.yaml

test: setup tenants
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace --no-fail-fast

# The standard suite (docs/benchmarks.md): in-process benches, then the load tester's scenarios
# against the release binary (servers on CPU 0, load on CPU 1), then wrk cross-checks. Results go
# to $(RESULTS)/. About 7.5 minutes of measuring once built (plus about 22 minutes of fat-LTO
# builds after a change). The 1,000-distinct-builds density run (docs/benchmarks.md) is left
# out: its 1,000 compiles alone take minutes.
RESULTS ?= loadtest-results
LOADTEST := target/release/atoll-loadtest

# The crash soak in `make bench`: SIGKILL rounds under load (`make test` runs 30).
CHAOS_ROUNDS ?= 300

bench: setup tenants
	$(CARGO) build --release --workspace --bins --examples
	$(CARGO) bench -p atoll-gateway --bench invoke --bench deploy --bench observe
	$(LOADTEST) scenario hello --pin --duration 10s --out $(RESULTS)
	$(LOADTEST) scenario density --pin --tenants 10,100,1000,10000 --components shared --duration 5s --out $(RESULTS)/shared
	$(LOADTEST) scenario density --pin --tenants 10,100 --components distinct --duration 5s --out $(RESULTS)/distinct
	$(LOADTEST) scenario noisy-neighbour --duration 10s --out $(RESULTS)
	$(LOADTEST) scenario deploy-under-load --pin --duration 10s --out $(RESULTS)
	scripts/bench-http.sh
	scripts/bench-observability.sh
	ATOLL_CHAOS_ROUNDS=$(CHAOS_ROUNDS) $(CARGO) test -p atoll-gateway --test chaos -- --nocapture

# Fuzzing (cargo-fuzz, libFuzzer, on the stable toolchain without a sanitizer): each target in
# fuzz/ runs for FUZZ_SECONDS from its seeds in fuzz/corpus/<target> (committed), keeping what it
# finds in fuzz/work/<target> (not committed); a crash stops the run and leaves its input in
# fuzz/artifacts/<target>/, to be fixed and then added to the seeds. `make test` replays the
# seeds (gateway/tests/fuzz_corpus.rs).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := config path admin_bodies cache_control

fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	cd fuzz && $(CARGO) fuzz build -s none
	for target in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/work/$$target; \
		(cd fuzz && $(CARGO) fuzz run -s none $$target work/$$target corpus/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048) || exit 1; \
	done

setup:
	@scripts/setup.sh

tenants:
	cd tenants && CARGO_TARGET_DIR=target $(CARGO) build --release

build:
	$(CARGO) build -p atoll-gateway --bin atoll

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd tenants && $(CARGO) clippy --release -- -D warnings

fmt:
	$(CARGO) fmt --all
	cd tenants && $(CARGO) fmt --all

clean:
	$(CARGO) clean
	cd tenants && $(CARGO) clean
