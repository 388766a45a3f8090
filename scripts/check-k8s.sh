#!/usr/bin/env bash
# Validates the Kubernetes manifests of deploy/kubernetes: each object against the
# Kubernetes API's schema (kubernetes-validate, strict: unknown fields are errors), and the
# objects against each other (scripts/check-k8s.py). The validator is installed, pinned, in
# a virtual environment under target/ from PyPI; no cluster is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/k8s-venv
if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -q '1.37.0'; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0'
fi
"$venv/bin/kubernetes-validate" --strict --quiet -k 1.31.0 deploy/kubernetes/*.yaml
"$venv/bin/python" scripts/check-k8s.py deploy/kubernetes docs/CONFIGURATION.md
