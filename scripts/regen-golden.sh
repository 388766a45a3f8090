#!/usr/bin/env bash
# Regenerates instrumenter/testdata/cover/*.<rules>.golden from the `go tool cover` of each Go
# release livecov follows: the local Go 1.26 writes X.go120.golden, Go 1.27 (fetched through
# the Go module proxy with GOTOOLCHAIN) writes X.go127.golden. The golden files are what the
# instrumenter's tests compare against: run this after adding a case to the corpus, or when
# moving to a new Go release, and review the diff.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p livecov-conformance
for toolchain in local go1.27.3; do
  goroot=$(GOTOOLCHAIN=$toolchain go env GOROOT)
  PATH="$goroot/bin:$PATH" GOTOOLCHAIN=local go version
  PATH="$goroot/bin:$PATH" GOTOOLCHAIN=local target/debug/livecov-conformance golden instrumenter/testdata/cover/*.go
done
git status --short instrumenter/testdata/cover
