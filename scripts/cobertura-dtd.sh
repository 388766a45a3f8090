#!/usr/bin/env bash
# Fetches Cobertura's coverage-04.dtd into target/cobertura/ (unless it is there) and prints
# its path. The DTD comes from the source distribution of coverage.py on PyPI, which ships it
# (lab/coverage-04.dtd); the tests validate `livecov report --format cobertura` against it
# with xmllint. Needs pip (python3 -m pip).
set -euo pipefail
cd "$(dirname "$0")/.."

version=7.6.1
dtd="$PWD/target/cobertura/coverage-04.dtd"
if [ ! -s "$dtd" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "cobertura-dtd.sh: fetching coverage-04.dtd from coverage $version (PyPI)" >&2
    python3 -m pip download --quiet --no-deps --no-binary :all: "coverage==$version" -d "$tmp" >&2
    mkdir -p "$(dirname "$dtd")"
    tar -xzf "$tmp/coverage-$version.tar.gz" -O "coverage-$version/lab/coverage-04.dtd" >"$tmp/dtd"
    grep -q '<!ELEMENT coverage (sources?,packages)>' "$tmp/dtd"
    mv "$tmp/dtd" "$dtd"
fi
echo "$dtd"
