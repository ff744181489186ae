#!/usr/bin/env bash
# The README's first command: set up everything retrain needs on Debian 12
# (apt packages, the locked Python environment) and build the candidate
# model on the embedded default dataset. Idempotent; a second run is a no-op
# build.
set -euo pipefail
source "$(dirname "$0")/env.sh"
setup_all
cd "$ROOT"
bazel build //models:candidate "$@"
echo "retrain-setup: done; outputs in bazel-bin/models/candidate/"
