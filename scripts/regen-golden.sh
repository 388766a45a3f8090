#!/usr/bin/env bash
# Regenerates instrumenter/testdata/cover/*.golden from the installed Go's `go tool cover`.
# The golden files are what the instrumenter's tests compare against: run this after adding a
# case to the corpus, or when moving to a new Go release, and review the diff.
set -euo pipefail
cd "$(dirname "$0")/.."
go version
cargo run -q -p livecov-conformance -- golden instrumenter/testdata/cover/*.go
git status --short instrumenter/testdata/cover
