"""A promotable model without Bazel: the in-memory chain over real manifests, and the CLI in-process.

``chain_support`` signs a chain whose dataset links name made-up manifests;
``promote`` checks them in the repository. ``write_repo`` writes two tiny
Parquet datasets, keeps only their manifests (the data is then "not present
locally", as in a model store), and ``promotable_chain`` names those
manifests and digests, so a model directory from ``write_model`` verifies
and promotes through the real ``retrain`` command in well under a second.

``run`` calls that command in-process (in a thread, so one that blocks on a
FIFO fails the test instead of hanging it); ``tree`` lists every path under
a directory with its content's sha256, to prove a refusal wrote nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retrain.attest.envelope import write_envelopes
from retrain.attest.sign import LINK_FILES, sign_statement
from retrain.cli import main
from retrain.manifest import create_manifest
from tests.adversarial.chain_support import (
    DATASET_DIGEST,
    HOLDOUT_DIGEST,
    MODEL_FILES,
    Chain,
    build_statement,
)

__all__ = [
    "Outcome",
    "Repo",
    "model_files",
    "promotable_chain",
    "run",
    "tree",
    "write_model",
    "write_repo",
]


@dataclass(frozen=True)
class Repo:
    """A repository holding ``data_manifests/NAME.json`` for the datasets ``default`` and ``holdout``."""

    root: Path
    digests: Mapping[str, str]  # dataset name -> "sha256:<dataset digest>"
    manifests: Mapping[str, str]  # dataset name -> sha256 of its manifest file


def write_repo(root: Path) -> Repo:
    digests, manifests = {}, {}
    for name, first_id in (("default", 1), ("holdout", 1_000_001)):
        data = root / "data" / name
        data.mkdir(parents=True)
        ids = list(range(first_id, first_id + 3))
        pq.write_table(pa.table({"customer_id": ids, "age": [30, 40, 50]}), data / "part.parquet")
        manifest = create_manifest(data, name=name)
        path = root / "data_manifests" / f"{name}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(manifest.to_json_bytes())
        digests[name] = manifest.dataset_digest
        manifests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    shutil.rmtree(root / "data")
    return Repo(root, digests, manifests)


def model_files(model: bytes = MODEL_FILES["model.rtm"]) -> dict[str, bytes]:
    """The build's five outputs, with ``model`` as model.rtm (another model: other bytes)."""
    return {**MODEL_FILES, "model.rtm": model}


def promotable_chain(
    repo: Repo,
    files: Mapping[str, bytes] = MODEL_FILES,
    *,
    holdout: bool = True,
    tree_state: str | None = "clean",
) -> Chain:
    """The pristine chain of ``files``, naming ``repo``'s manifests and dataset digests.

    ``holdout=False``: the chain of a pipeline without a pinned holdout, whose
    evaluation names the training dataset as its holdout.
    """
    chain = Chain.pristine(files)
    chain.statements["build"] = build_statement(files, tree_state)
    text = json.dumps(chain.statements)
    text = text.replace(DATASET_DIGEST[7:], repo.digests["default"][7:])
    text = text.replace(HOLDOUT_DIGEST[7:], repo.digests["holdout"][7:])
    chain = Chain(json.loads(text))
    for link, name in (("dataset", "default"), ("holdout", "holdout")):
        chain.predicate(link)["manifest"]["sha256"] = repo.manifests[name]
        for subject in chain.statements[link]["subject"]:
            if subject["name"] == f"data_manifests/{name}.json":
                subject["digest"]["sha256"] = repo.manifests[name]
    if not holdout:
        chain.predicate("evaluation")["dataset"] = {
            "name": "default",
            "digest": repo.digests["default"],
        }
    return chain


def write_model(
    model_dir: Path,
    chain: Chain,
    signers: Sequence[Any],
    *,
    files: Mapping[str, bytes] = MODEL_FILES,
    links: Sequence[str] = tuple(LINK_FILES),
) -> Path:
    """The build's files and one envelope per link in ``links``, signed by every signer."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (model_dir / name).write_bytes(data)
        (model_dir / name).chmod(0o644)
    for link in links:
        envelope = sign_statement(chain.payload(link), list(signers))
        write_envelopes(model_dir / LINK_FILES[link], [envelope])
    return model_dir


# ---------------------------------------------------------------------------
# The CLI, in-process


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> Outcome:
    """``retrain ARGV`` in-process; never a traceback, never blocked for more than a minute."""
    result: list[Any] = []

    def call() -> None:
        try:
            result.append(main([str(a) for a in argv]))
        except BaseException as exc:  # handed to the test below
            result.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout=60)
    out, err = capsys.readouterr()
    if worker.is_alive():
        raise AssertionError(f"retrain {' '.join(map(str, argv))} blocked: {err}")
    if isinstance(result[0], BaseException):
        raise result[0]
    assert "Traceback" not in out + err, out + err
    return Outcome(result[0], out, err)


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` (itself included): files by sha256, the rest by kind."""
    if not os.path.lexists(root):
        return {}
    paths = [root]
    for dirpath, dirnames, filenames in os.walk(root):  # never follows a symlink
        paths += [Path(dirpath) / name for name in dirnames + filenames]
    listing = {}
    for path in sorted(paths):
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            kind = "symlink -> " + os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            kind = hashlib.sha256(path.read_bytes()).hexdigest()
        elif stat.S_ISDIR(st.st_mode):
            kind = "directory"
        else:
            kind = "special"
        listing[str(path.relative_to(root))] = kind
    return listing
