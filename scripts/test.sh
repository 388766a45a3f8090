#!/usr/bin/env bash
# Runs every livecov test: formatting and lint gates, the Rust tests (which build and run real
# instrumented Go programs, and run the server on SQLite and on PostgreSQL), and the
# conformance run against `go tool cover` on real modules.
# Installs what is missing first (PostgreSQL, lcov and libxml2-utils for the export checks, and
# Chromium for the dashboard's browser test, from Debian's packages, which needs root or sudo;
# Cobertura's DTD from PyPI into target/; playwright-core from npm into web-tests/);
# needs Go, Rust (rustup) and Node.js with npm on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchains"
for tool in go cargo node npm; do
  command -v "$tool" >/dev/null || { echo "$tool is not on PATH: install Go 1.26, Rust and Node.js first" >&2; exit 1; }
done
if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
go version
cargo --version
echo "node $(node --version)"

step "PostgreSQL"
LIVECOV_TEST_POSTGRES=$(scripts/postgres.sh)
export LIVECOV_TEST_POSTGRES
echo "tests use $LIVECOV_TEST_POSTGRES"

step "export checks: genhtml, xmllint, Cobertura's DTD"
scripts/apt-install.sh lcov libxml2-utils
scripts/cobertura-dtd.sh

step "dashboard's browser test: Chromium, playwright-core (web-tests/)"
scripts/apt-install.sh chromium
(cd web-tests && npm ci --no-audit --no-fund)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "gofmt, go vet"
go_dirs=(agent-go examples/greeter instrumenter/testdata/run scripts/check-docker)
unformatted=$(gofmt -l "${go_dirs[@]}")
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi
for d in "${go_dirs[@]}"; do (cd "$d" && go vet ./...); done

step "Docker files: docker-compose.yml by compose-go, its Dockerfiles by BuildKit's parser"
(cd scripts/check-docker && go run . ../../docker-compose.yml)

step "agent: go test -race"
(cd agent-go && go test -race -count=1 ./...)

step "cargo test"
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$test_log"
passed=$(grep -o '^test result: ok\. [0-9]* passed' "$test_log" | awk '{s += $4} END {print s + 0}')

step "conformance: pinned modules against go tool cover, go build, go vet, go test -cover and livecov test"
cargo run --quiet --locked -p livecov-conformance -- modules

step "conformance: the testdata corpus against this Go's go tool cover"
cargo run --quiet --locked -p livecov-conformance -- compare instrumenter/testdata/cover

echo
echo "tests: $passed passed, 0 failed"
