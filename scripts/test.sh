#!/usr/bin/env bash
# Runs every livecov test: formatting and lint gates, the Rust tests (which build and run real
# instrumented Go programs, and run the server on SQLite and on PostgreSQL), and the
# conformance run against `go tool cover` on real modules and on Go's own tree. Everything
# that runs Go runs on the local Go 1.26 and again on Go 1.27, which `go` fetches through the
# Go module proxy (GOTOOLCHAIN=go1.27.3, about 76 MB once).
# Installs what is missing first (PostgreSQL, lcov and libxml2-utils for the export checks, and
# Chromium for the dashboard's browser test, from Debian's packages, which needs root or sudo;
# Cobertura's DTD from PyPI into target/; playwright-core from npm into web-tests/);
# needs Go, Rust (rustup) and Node.js with npm on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
# cargo keeps what it learns from rustc in target/.rustc_info.json; a probe that fails once
# (seen here during the clippy step, rustc reading another process's output as its input)
# would fail every later cargo command of the run. Ask rustc afresh each time.
export CARGO_CACHE_RUSTC_INFO=0

# Something on this machine has replaced /dev/null with a regular file before, and every
# later reader of it (cargo's rustc probe among them) then read other programs' output. Check
# at every step, put the device back (as root) and say after which step it happened.
last_step="the start"
check_dev_null() {
  [ -c /dev/null ] && return 0
  echo "warning: /dev/null was a regular file after $last_step; restoring the device" >&2
  rm -f /dev/null && mknod -m 666 /dev/null c 1 3
}
step() { check_dev_null; last_step=$*; printf '\n==> %s\n' "$*"; }

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

step "Go 1.27 (GOTOOLCHAIN=go1.27.3, through the Go module proxy)"
go127_root=$(GOTOOLCHAIN=go1.27.3 go env GOROOT)
# Runs a command with Go 1.27 first on PATH, as a user who installed it would.
on_go127() { PATH="$go127_root/bin:$PATH" GOTOOLCHAIN=local "$@"; }
on_go127 go version

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
go_dirs=(agent-go examples/greeter instrumenter/testdata/run scripts/check-docker bench/service)
unformatted=$(gofmt -l "${go_dirs[@]}")
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi
for d in "${go_dirs[@]}"; do (cd "$d" && go vet ./... && on_go127 go vet ./...); done

step "Docker files: docker-compose.yml by compose-go, its Dockerfiles by BuildKit's parser"
(cd scripts/check-docker && go run . ../../docker-compose.yml)

step "Kubernetes manifests: the API's schema (kubernetes-validate, strict), and each other"
scripts/check-k8s.sh

step "agent: go test -race, on Go 1.26 and Go 1.27"
(cd agent-go && go test -race -count=1 ./... && on_go127 go test -race -count=1 ./...)

step "cargo test"
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$test_log"

step "cargo test on Go 1.27: livecov build, test, blocks, inlining, many builds, ended processes, channels and exclusions, and the instrumenter's runs"
on_go127 cargo test --locked -p livecov --test build --test blocks --test inlining --test builds --test ended --test channel --test exclude 2>&1 | tee -a "$test_log"
on_go127 cargo test --locked -p livecov-instrumenter --test rewrite 2>&1 | tee -a "$test_log"
passed=$(grep -o '^test result: ok\. [0-9]* passed' "$test_log" | awk '{s += $4} END {print s + 0}')

cargo build --quiet --locked -p livecov-conformance
conformance=target/debug/livecov-conformance
for go in go1.26 go1.27; do
  run=()
  [ "$go" = go1.27 ] && run=(on_go127)

  step "conformance on $go: pinned modules against go tool cover, go build, go vet, go test -cover and livecov test"
  "${run[@]}" "$conformance" modules

  step "conformance on $go: the testdata corpus and Go's own tree against go tool cover"
  "${run[@]}" "$conformance" compare instrumenter/testdata/cover
  "${run[@]}" "$conformance" goroot
done

check_dev_null
echo
echo "tests: $passed passed, 0 failed"
