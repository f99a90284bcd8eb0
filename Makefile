# fulcrum: build, demo and test entry points (Debian 12, as root).
#
#   make deps        install missing Debian packages (idempotent, quiet)
#   make hugepages   reserve 512 x 2 MiB hugepages, mount hugetlbfs (never fails)
#   make build       release binaries: target/release/fulcrum, fulcrumctl
#   make test        deps + build + cargo test + startup, pcap, e2e tests + bench gate
#                    (gate.sh --selftest: a 1.5x slower process() must fail; then no
#                    stage over 1.35x its baseline ratio)
#   make demo        deps + build + hugepages + NAT and DR demo in namespaces
#   make bench       build + hugepages + pipeline sweeps vs testpmd + latency (benches/latency.sh) + criterion + plots;
#                    fails if a run's checks fail (rx = tx and drops = 0 over the window,
#                    conns created = flows, rr spread, testpmd TX-dropped = 0: benches/pipeline.sh)
#                    or latency.sh got no samples; rewrites BENCHMARKS.md's generated sections
#                    (targets, run, schedulers, latency) and docs/bench/*.png
#   make clean       cargo clean + leftovers of crashed demo/test runs
#
# Single suites (after `make build`): make startup-test, pcap-test, e2e-test,
# topo-check (the namespace topology alone, no fulcrum needed), bench-gate
# (per-stage criterion benches vs benches/baseline.json, threshold 1.35x).

SHELL := /bin/bash
CARGO ?= $(shell command -v cargo 2>/dev/null || echo $(HOME)/.cargo/bin/cargo)

.PHONY: all deps hugepages build test demo bench clean startup-test pcap-test e2e-test topo-check bench-gate

all: build

deps:
	@bash scripts/deps.sh

hugepages:
	@bash scripts/hugepages.sh

build:
	$(CARGO) build --release --workspace --bins

test:
	@bash scripts/test-all.sh

demo: deps build hugepages
	@bash scripts/demo.sh

bench: deps build hugepages
	@PERF=1 bash benches/pipeline.sh
	@bash benches/latency.sh
	@bash benches/report.sh

bench-gate:
	@bash benches/gate.sh

startup-test:
	@bash tests/startup/run.sh

pcap-test:
	@bash tests/pcap/run.sh

e2e-test:
	@bash tests/e2e/run.sh

topo-check:
	@bash scripts/topo-check.sh

clean:
	-$(CARGO) clean
	@bash scripts/clean.sh
