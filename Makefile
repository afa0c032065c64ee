# iot-api: two commands do all the set-up.
#   make run   build and serve on the embedded store; prints the base URL and an admin token
#   make test  format check, clippy, domain purity, every test (starts its own PostgreSQL)

SHELL := /bin/bash
CARGO ?= cargo

IOT_BIND ?= 127.0.0.1:8080
# A development secret, so that `make run` works at once. Set your own anywhere else.
IOT_JWT_SECRET ?= dev-only-secret-do-not-use-in-production-0123456789
export IOT_JWT_SECRET

# cargo-nextest when installed (one process per test), else cargo test.
TEST_RUNNER := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo "nextest run --no-fail-fast" || echo "test --no-fail-fast")

.PHONY: run test fuzz fmt-check clippy purity openapi build clients bench

build:
	$(CARGO) build --release -p iot-api

# The banner (base URL, an admin token for tenant `demo`) is printed by the server once its
# address is bound: a busy port ends with one line naming it, and no banner.
# `make run IOT_BIND=127.0.0.1:9000` serves elsewhere.
run: build
	exec env -u DATABASE_URL IOT_BIND=$(IOT_BIND) ./target/release/iot-api serve --dev-banner

test: fmt-check clippy purity
	./scripts/with-test-postgres.sh $(CARGO) $(TEST_RUNNER) --workspace --all-features

# Spec-driven fuzzing with Schemathesis (installed into a virtualenv under target/) against a
# live server on each store.
fuzz:
	./scripts/with-test-postgres.sh ./scripts/schemathesis.sh

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

purity:
	./scripts/check-purity.sh

# Rewrites the committed OpenAPI document from the code.
openapi:
	$(CARGO) run --quiet -p iot-api -- openapi > openapi/openapi.json

# Generated clients, proven: lints openapi/openapi.json, generates a Python client and TypeScript
# types into target/clients/ (pinned tools, cached), type-checks clients/typescript/check.ts and
# drives a live server on the embedded store with clients/python/smoke.py.
clients:
	./scripts/clients.sh

# Release build, a throwaway tuned PostgreSQL, the dataset seeded through the API, wrk load with
# pgbench/COPY references in the same run; writes BENCHMARKS.md (full: ~25 min on 2 cores). BENCH_SCALE=small: ~3 min.
bench:
	./scripts/bench/run.sh
