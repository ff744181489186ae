#!/usr/bin/env bash
# The README's second command: the whole test suite, as CI runs it.
# Sets up what is missing (idempotent), then lint, types, unit, integration
# (real Bazel builds, marked `bazel`/`slow`; they all run here), the audit of
# the committed promotion registry and the bit-for-bit rebuild of every model
# in it.
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
# The promoted models kept in attestations/ are the project's audit trail:
# the log must verify, and every model must rebuild bit-for-bit from its
# attestations (checked out at its recorded commit, fresh output base, no cache).
log "retrain audit"
retrain audit
log "retrain rebuild --all"
retrain rebuild --all
