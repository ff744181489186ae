"""The promotion registry: staged rollout, a tamper-evident log, instant rollback.

Layout (``attestations/registry/`` by default, so the repository's history is
also the audit trail; format in docs/registry.md)::

    checkpoint.json          signed: log size, head hash, the state it leads to, the policy
    log/00000001.json        one signed promotion entry (DSSE envelope) per file
    models/<sha256>/         each promoted model's verified files, content-addressed
    .lock                    writers hold it (flock) while they append

Its parts, each a module: ``rules`` (pure: what an entry does to the state,
what the policy forbids), ``log`` (reading and checking entries and the
checkpoint), ``store`` (the model store: snapshot, verified set, copy), and
``core`` (``Registry``: promote, rollback, audit under one lock). ``audit``
re-verifies everything: every entry's signature under the policy it was
made under, the hash chain, positions, each transition's rules, the
checkpoint, every model's chain, and that the store holds only what the
verified links name.
"""

from __future__ import annotations

from retrain.registry.core import AuditReport, PromotionRefused, PromotionResult, Registry
from retrain.registry.log import LogBroken, LogEntry
from retrain.registry.rules import apply_entry, champion_errors, transition_errors

__all__ = [
    "AuditReport",
    "LogBroken",
    "LogEntry",
    "PromotionRefused",
    "PromotionResult",
    "Registry",
    "apply_entry",
    "champion_errors",
    "transition_errors",
]
