#!/usr/bin/env bash
# Validates the manifests in this directory against the Kubernetes API schema with
# kubernetes-validate (PyPI; it ships the API's JSON schemas, so no network is
# needed), strict: unknown fields are errors. The ServiceMonitor is a CRD the
# validator has no schema for: it is checked against schema/servicemonitor-v1.json
# with the jsonschema module kubernetes-validate brings along.
# Installed by `scripts/setup.sh dist` into /opt/flowtop-venv.
set -euo pipefail
cd "$(dirname "$0")"
venv=${FLOWTOP_VENV:-/opt/flowtop-venv}
"$venv/bin/kubernetes-validate" --strict --kubernetes-version 1.30.0 \
  namespace.yaml daemonset.yaml service.yaml
"$venv/bin/kubernetes-validate" --strict namespace.yaml daemonset.yaml service.yaml
"$venv/bin/python" - servicemonitor.yaml schema/servicemonitor-v1.json <<'PY'
import json, sys, yaml, jsonschema
doc = yaml.safe_load(open(sys.argv[1]))
jsonschema.validate(doc, json.load(open(sys.argv[2])))
print(f"INFO {sys.argv[1]} passed against {sys.argv[2]}")
PY
