# fulcrum: build, demo and test entry points (Debian 12, as root).
#
#   make deps        install missing Debian packages (idempotent, quiet)
#   make hugepages   reserve 512 x 2 MiB hugepages, mount hugetlbfs (never fails)
#   make build       release binaries: target/release/fulcrum, fulcrumctl
#   make test        deps + build + cargo test + startup, pcap and e2e tests
#   make demo        deps + build + hugepages + NAT and DR demo in namespaces
#   make bench       build + hugepages + pipeline benchmark vs testpmd + criterion (BENCHMARKS.md)
#   make clean       cargo clean + leftovers of crashed demo/test runs
#
# Single suites (after `make build`): make startup-test, pcap-test, e2e-test,
# topo-check (the namespace topology alone, no fulcrum needed).

SHELL := /bin/bash
CARGO ?= $(shell command -v cargo 2>/dev/null || echo $(HOME)/.cargo/bin/cargo)

.PHONY: all deps hugepages build test demo bench clean startup-test pcap-test e2e-test topo-check

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
	$(CARGO) bench -p fulcrum-benches --bench process -- --warm-up-time 1 --measurement-time 3
	$(CARGO) bench -p sched --bench pick -- --warm-up-time 1 --measurement-time 2

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
