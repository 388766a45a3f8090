"""Checks that the Kubernetes manifests of deploy/kubernetes fit together, beyond what the
schema validator (kubernetes-validate, run by scripts/check-k8s.sh) can see in one object:
every Service selects the pods of a workload by their labels and targets a port they name,
every secret key a container reads is one the README of the secret names, the agents point
at the server's Service and port, the server at PostgreSQL's, and every livecov variable a
container sets is one docs/CONFIGURATION.md documents.

Usage: python check-k8s.py DIR CONFIGURATION_MD
"""

import re
import sys
from pathlib import Path

import yaml

SECRET_KEYS = {"postgres-password", "admin-token", "agent-token"}


def main(directory, configuration):
    docs = []
    for path in sorted(Path(directory).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    documented = set(re.findall(r"`(LIVECOV_[A-Z_]+|DATABASE_URL)`", Path(configuration).read_text()))
    problems = []
    workloads = [(f, d) for f, d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    services = {d["metadata"]["name"]: d for f, d in docs if d["kind"] == "Service"}

    for f, svc in services.items():
        selector = svc["spec"]["selector"]
        matched = [
            w for _, w in workloads
            if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())
        ]
        if not matched:
            problems.append(f"Service {f} selects no pods: {selector}")
        for port in svc["spec"]["ports"]:
            for w in matched:
                names = {
                    p.get("name")
                    for c in w["spec"]["template"]["spec"]["containers"]
                    for p in c.get("ports", [])
                }
                if port["targetPort"] not in names:
                    problems.append(f"Service {f}: no container of {w['metadata']['name']} names port {port['targetPort']}")

    for f, w in workloads:
        name = w["metadata"]["name"]
        sel = w["spec"]["selector"]["matchLabels"]
        labels = w["spec"]["template"]["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in sel.items()):
            problems.append(f"{f}: {name}'s selector does not match its pods' labels")
        for c in w["spec"]["template"]["spec"]["containers"]:
            for env in c.get("env", []):
                key = env.get("valueFrom", {}).get("secretKeyRef", {})
                if key and (key["name"] != "livecov" or key["key"] not in SECRET_KEYS):
                    problems.append(f"{f}: {name} reads secret {key['name']}/{key['key']}, not one livecov.yaml says to create")
                n = env["name"]
                if (n.startswith("LIVECOV_") or n == "DATABASE_URL") and n not in documented:
                    problems.append(f"{f}: {name} sets {n}, which docs/CONFIGURATION.md does not document")
                value = env.get("value", "")
                if n == "LIVECOV_SERVER":
                    m = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", value)
                    if not m or m.group(1) not in services or int(m.group(2)) not in [p["port"] for p in services[m.group(1)]["spec"]["ports"]]:
                        problems.append(f"{f}: {name}'s LIVECOV_SERVER {value} is not a Service's port")
                if n == "DATABASE_URL":
                    m = re.fullmatch(r"postgres://[^@]+@([a-z0-9-]+):(\d+)/\w+", value)
                    if not m or m.group(1) not in services:
                        problems.append(f"{f}: {name}'s DATABASE_URL {value} is not a Service")

    for p in problems:
        print("check-k8s:", p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check-k8s: {len(docs)} objects fit together")


if __name__ == "__main__":
    main(*sys.argv[1:])
