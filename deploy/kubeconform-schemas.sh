#!/bin/sh
# kubeconform-schemas.sh VERSION K8S DIR: writes the strict JSON schemas of
# Kubernetes K8S (e.g. v1.35.0) that the PyPI package kubernetes-validate
# VERSION ships into DIR/K8S-standalone-strict, in the form kubeconform
# reads from disk: as shipped, every file has an absolute $id and refers to
# /api/_definitions.json, which kubeconform cannot resolve (it then reports
# every kind as "could not find schema"), so every $id goes and each $ref
# to it becomes relative.
set -eu
version=$1 k8s=$2 dir=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pip download --quiet --no-deps --dest "$tmp" "kubernetes-validate==$version"
unzip -q "$tmp"/kubernetes_validate-*.whl "kubernetes_validate/kubernetes-json-schema/$k8s-local-strict/*" -d "$tmp"
out="$dir/$k8s-standalone-strict"
mkdir -p "$tmp/out"
python3 - "$tmp/kubernetes_validate/kubernetes-json-schema/$k8s-local-strict" "$tmp/out" <<'PY'
import json, os, sys
src, out = sys.argv[1:]
def fix(v):
    if isinstance(v, dict):
        return {k: fix(x) for k, x in v.items() if k != "$id"}
    if isinstance(v, list):
        return [fix(x) for x in v]
    if isinstance(v, str) and v.startswith("/api/_definitions.json#"):
        return v[len("/api/"):]
    return v
for name in os.listdir(src):
    with open(os.path.join(src, name)) as f:
        schema = json.load(f)
    with open(os.path.join(out, name), "w") as f:
        json.dump(fix(schema), f)
PY
mkdir -p "$dir"
rm -rf "$out"
mv "$tmp/out" "$out"
echo "kubeconform schemas: $out"
