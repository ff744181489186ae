#!/usr/bin/env bash
# The README's second command: the whole test suite, as CI runs it.
# Sets up what is missing (idempotent), then lint, types, unit, integration
# (real Bazel builds, marked `bazel`/`slow`; they all run here).
set -euo pipefail
source "$(dirname "$0")/env.sh"
setup_all
cd "$ROOT"
log "ruff"
ruff check retrain tests bench
ruff format --check retrain tests bench
log "mypy"
mypy
log "pytest"
python -m pytest tests -q -p no:cacheprovider "$@"
