#!/usr/bin/env bash
# Installs the Debian packages driftloop's integration tests and benchmarks run:
# Prometheus, Alertmanager (binary name: prometheus-alertmanager), wrk and Fashion-MNIST
# (dataset-fashion-mnist: /usr/share/datasets/fashion-mnist/*-ubyte.gz, the vision blueprint's default)
# and headless Chromium with its driver (the console's browser tests drive /usr/bin/chromium).
# Skips what is already there; needs root (or sudo) only when something is missing.
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v wrk >/dev/null || need+=(wrk)
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
