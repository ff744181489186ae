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
# Trust starts at the project's root key, named here by its keyid: a CI
# system should hold this fingerprint in its own settings, outside the
# repository (docs/attestations.md#where-trust-starts).
RETRAIN_TRUST_ROOT="${RETRAIN_TRUST_ROOT:-db654a6762ab5cbee99f2f378a5ad84fbf133e0f518d663f5ed9c4c82796a6d6}"
log "retrain policy verify"
retrain policy verify attestations/policy.json --trust-root "$RETRAIN_TRUST_ROOT"
log "retrain audit"
retrain audit --trust-root "$RETRAIN_TRUST_ROOT"
log "retrain rebuild --all"
retrain rebuild --all --trust-root "$RETRAIN_TRUST_ROOT"
