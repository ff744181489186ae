"""Entry points of the Bazel actions: ``python -S -B -m retrain._internal.actions CMD @params``.

Each subcommand checks the environment contract, calls one library function,
and writes its outputs atomically. Bad input ends with one line per problem
on stderr (``retrain: error: ...``) and a non-zero exit; nothing is written.
Only the rules in rules/private/ call this module.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain import __version__
from retrain._internal.fsio import atomic_write_bytes, atomic_write_json
from retrain.digest import sha256_bytes, sha256_file, tree_digest
from retrain.errors import InputError, RetrainError

if TYPE_CHECKING:
    from retrain.attest.policy import TrustPolicy

_VERIFIED_SCHEMA = "https://retrain.dev/dataset-verification/v1"
_REPORT_SCHEMA = "https://retrain.dev/train-report/v1"
_METRICS_SCHEMA = "https://retrain.dev/metrics/v2"


def _pairs(values: Sequence[str], flag: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for value in values:
        key, sep, path = value.partition("=")
        if not sep or not key or not path:
            raise InputError(f"{flag} must be NAME=PATH", found=repr(value))
        if key in out:
            raise InputError(f"{flag} names {key!r} twice")
        out[key] = Path(path)
    return out


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", where=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON at line {exc.lineno}: {exc.msg}", where=path) from None


def _load_dataset(args: argparse.Namespace, prefix: str = "") -> tuple[Any, Any]:
    """The dataset named by --[PREFIX]manifest/root/file, verified, as (manifest, table)."""
    from retrain.dataset import load_verified_table
    from retrain.manifest import load_manifest, sandbox_containment

    manifest_path = getattr(args, f"{prefix}manifest")
    root = getattr(args, f"{prefix}root")
    manifest = load_manifest(manifest_path)
    table = load_verified_table(
        manifest,
        _pairs(getattr(args, f"{prefix}file"), f"--{prefix.replace('_', '-')}file"),
        containment=sandbox_containment(root, manifest=manifest_path),
        manifest_where=manifest_path,
    )
    return manifest, table


_DATASET_CHECKS = ("listed-files", "containment", "size", "sha256", "rows", "schema")


def cmd_verify_dataset(args: argparse.Namespace) -> None:
    from retrain.attest.predicates import DATASET_V1, DatasetPredicate
    from retrain.attest.statement import ResourceDescriptor, Statement
    from retrain.quality import load_quality_spec, profile_table, run_quality_checks

    manifest, table = _load_dataset(args)
    manifest_sha = sha256_file(args.manifest).sha256
    quality: dict[str, Any] = {
        "profile": profile_table(table),
        "spec": None,
        "checks": [],
        "passed": True,
    }
    if args.quality:
        spec = load_quality_spec(args.quality)
        if spec.dataset != manifest.name:
            raise InputError(
                "quality spec is for another dataset",
                where=args.quality,
                expected=manifest.name,
                found=spec.dataset,
            )
        reference = None
        if spec.drift is not None:
            if not args.reference_manifest:
                raise InputError(
                    f"the quality spec declares drift against {spec.drift.reference!r}; give the dataset rule a reference",
                    where=args.quality,
                )
            ref_manifest, reference = _load_dataset(args, "reference_")
            if ref_manifest.name != spec.drift.reference:
                raise InputError(
                    "drift reference",
                    where=args.quality,
                    expected=spec.drift.reference,
                    found=ref_manifest.name,
                )
        verdicts = run_quality_checks(table, spec, reference=reference, where=manifest.name)
        quality |= {
            "spec": {"path": args.quality_uri, "sha256": sha256_file(args.quality).sha256},
            "checks": [v.to_dict() for v in verdicts],
            "passed": all(v.passed for v in verdicts),
        }
    predicate = DatasetPredicate(
        name=manifest.name,
        dataset_digest=manifest.dataset_digest,
        manifest_uri=args.manifest_uri,
        manifest_sha256=manifest_sha,
        rows=manifest.rows,
        files=len(manifest.entries),
        bytes=manifest.total_bytes,
        schema_fingerprint=manifest.schema_fingerprint,
        root=args.root if args.location == "repo" else None,
        checks=_DATASET_CHECKS,
        quality=quality,
        verifier={"retrain": __version__},
    )
    statement = Statement(
        subjects=(
            ResourceDescriptor(
                name=f"dataset/{manifest.name}",
                digest={"sha256": manifest.dataset_digest.removeprefix("sha256:")},
            ),
            ResourceDescriptor(name=args.manifest_uri, digest={"sha256": manifest_sha}),
        ),
        predicate_type=DATASET_V1,
        predicate=predicate.to_dict(),
    )
    atomic_write_bytes(args.out_statement, statement.to_json_bytes())
    atomic_write_json(
        args.out,
        {
            "schema": _VERIFIED_SCHEMA,
            "name": manifest.name,
            "manifest": {"path": args.manifest_uri, "sha256": manifest_sha},
            "dataset_digest": manifest.dataset_digest,
            "schema_fingerprint": manifest.schema_fingerprint,
            "files": len(manifest.entries),
            "rows": manifest.rows,
            "bytes": manifest.total_bytes,
            # Where a rebuild finds the data: in the repository, or in the store by digest.
            "location": {"root": args.root} if args.location == "repo" else {"store": True},
        },
    )


def _code_digest(sources: Sequence[str]) -> str:
    return tree_digest((s, sha256_file(s).sha256) for s in sources)


def cmd_train(args: argparse.Namespace) -> None:
    from retrain.hermetic import blas_report
    from retrain.recipe import load_recipe
    from retrain.serialize import model_to_bytes
    from retrain.train import train_model

    recipe = load_recipe(args.recipe)
    manifest, table = _load_dataset(args)
    env = _read_json(args.env_json)
    lineage = {
        "recipe": {"name": recipe.name, "sha256": sha256_file(args.recipe).sha256},
        "dataset": {"name": manifest.name, "digest": manifest.dataset_digest},
        "code_digest": _code_digest(args.source),
        "lock_sha256": env["lock"]["sha256"],
        "retrain_version": __version__,
    }
    blas = blas_report()
    model, report = train_model(recipe, table, lineage=lineage, where=manifest.name)
    data = model_to_bytes(model)
    atomic_write_json(
        args.out_report,
        {
            "schema": _REPORT_SCHEMA,
            "model_sha256": sha256_bytes(data),
            "recipe": recipe.to_dict(),
            "lineage": lineage,
            "training": report.to_dict(),
            "blas": blas,
        },
    )
    atomic_write_bytes(args.out_model, data)


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Validate the candidate on the holdout: contracts, metrics with intervals, champion, gates."""
    from retrain.attest.predicates import EVALUATION_V2, EvaluationPredicate
    from retrain.attest.statement import ResourceDescriptor, Statement
    from retrain.gates import load_gate_spec
    from retrain.hermetic import pin_threads
    from retrain.recipe import load_recipe
    from retrain.serialize import read_model
    from retrain.validation import validate_candidate

    pin_threads()
    recipe = load_recipe(args.recipe)
    spec = load_gate_spec(args.gates)
    holdout_manifest, holdout = _load_dataset(args)
    training_manifest, training = _load_dataset(args, "train_")
    model = read_model(args.model)
    model_sha = sha256_file(args.model).sha256
    champion = None
    record = _read_json(args.champion_record) if args.champion_record else {}
    # A registry champion with nothing serving its stage: no champion yet.
    if args.champion_model and record.get("model_sha256") is not None:
        champion_sha = sha256_file(args.champion_model).sha256
        if record.get("model_sha256") != champion_sha:
            raise InputError(
                "champion model is not the one whose chain was verified",
                where=args.champion_model,
                expected=record.get("model_sha256"),
                found=champion_sha,
            )
        champion = (champion_sha, read_model(args.champion_model))
    quality_failures = []
    for path in args.quality_statement:
        statement = Statement.from_json_bytes(Path(path).read_bytes(), where=path)
        quality = statement.predicate.get("quality", {})
        name = statement.predicate.get("dataset", {}).get("name", path)
        quality_failures += [
            f"{name}: {c['check']}{'(' + c['column'] + ')' if c.get('column') else ''} measured {c['measured']}, expected {c['threshold']}"
            for c in quality.get("checks", [])
            if not c.get("passed", True)
        ]
    same = holdout_manifest.dataset_digest == training_manifest.dataset_digest
    if same:
        # One dataset for both: the recipe's split must say which rows are held out.
        if recipe.split is None:
            raise InputError(
                "the holdout is the training dataset and the recipe declares no split",
                where=args.recipe,
                expected="a holdout dataset of its own, or a recipe split",
                found=f"both {holdout_manifest.name}",
            )
        import pyarrow as pa

        from retrain.split import holdout_mask

        holdout = holdout.filter(
            pa.array(holdout_mask(holdout, recipe.split, where=holdout_manifest.name))
        )
    result = validate_candidate(
        model,
        recipe,
        holdout,
        spec,
        training=None if same else training,
        training_name=training_manifest.name,
        leakage_key=spec.leakage_key,
        champion=champion,
        quality_failures=quality_failures,
        where=holdout_manifest.name,
    )
    results = result.to_dict()
    atomic_write_json(
        args.out,
        {
            "schema": _METRICS_SCHEMA,
            "model": {"name": Path(args.model).name, "sha256": model_sha},
            "dataset": {"name": holdout_manifest.name, "digest": holdout_manifest.dataset_digest},
            "training_dataset": {
                "name": training_manifest.name,
                "digest": training_manifest.dataset_digest,
            },
            "gate_spec": {"path": args.gates_uri, "sha256": sha256_file(args.gates).sha256},
        }
        | results,
    )
    lines = [v.line() for v in result.verdicts]
    failed = [v for v in result.verdicts if v.status == "failed"]
    counts = {
        s: sum(v.status == s for v in result.verdicts) for s in ("passed", "failed", "skipped")
    }
    lines.append(
        f"{'PASSED' if result.passed else 'FAILED'}: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped"
    )
    atomic_write_bytes(args.out_gates, ("\n".join(lines) + "\n").encode())
    predicate = EvaluationPredicate(
        model_name=Path(args.model).name,
        model_sha256=model_sha,
        dataset_name=holdout_manifest.name,
        dataset_digest=holdout_manifest.dataset_digest,
        training_dataset_name=training_manifest.name,
        training_dataset_digest=training_manifest.dataset_digest,
        metrics_file=Path(args.out).name,
        metrics_sha256=sha256_file(args.out).sha256,
        champion_sha256=result.champion_sha256,
        gates_passed=result.passed,
        failed_gates=tuple(f"{v.name}[{v.slice}]" if v.slice else v.name for v in failed),
        results=results,
    )
    statement = Statement(
        subjects=(ResourceDescriptor(name=Path(args.model).name, digest={"sha256": model_sha}),),
        predicate_type=EVALUATION_V2,
        predicate=predicate.to_dict(),
    )
    atomic_write_bytes(args.out_statement, statement.to_json_bytes())


def cmd_report(args: argparse.Namespace) -> None:
    from retrain.report import render_report

    html = render_report(
        metrics=_read_json(args.metrics),
        train_report=_read_json(args.train_report),
        datasets=[_read_json(p)["predicate"] for p in args.dataset_statement],
        target=args.target,
    )
    atomic_write_bytes(args.out, html.encode("utf-8"))


def _verified_champion(
    model: Path, policy: TrustPolicy, policy_path: str, whose: str
) -> dict[str, Any]:
    """The champion record of ``model`` after its chain verified against the policy."""
    from retrain.attest.verify import verify_model

    report = verify_model(model.parent, policy, policy_where=policy_path, repo_root=None)
    if not report.ok:
        first = report.failures[0]
        raise InputError(
            f"{whose} attestation does not verify ({len(report.failures)} failed check(s)); "
            f"first: {first.message}",
            where=str(model.parent),
        )
    return {
        "model_sha256": sha256_file(model).sha256,
        "policy": {"path": policy_path, "sha256": sha256_file(policy_path).sha256},
        "signers": {link.link: link.signers for link in report.links},
    }


def cmd_verify_champion(args: argparse.Namespace) -> None:
    """Verify the champion's chain before any number of it is trusted."""
    from retrain.attest.trust import load_policy

    policy = load_policy(args.policy)
    atomic_write_json(
        args.out, _verified_champion(Path(args.model), policy, args.policy, "champion's")
    )


def cmd_registry_champion(args: argparse.Namespace) -> None:
    """The model serving a stage of the promotion registry, verified, as the champion.

    The checkpoint must verify (signed by the head entry's approvers, its head
    entry in place), and the stored model's chain against the policy. With
    nothing serving the stage, the record says so and the model file is empty.
    """
    from retrain.attest.trust import load_policy
    from retrain.registry import Registry

    policy = load_policy(args.policy)
    registry = Registry(Path(args.registry), policy, policy_where=args.policy)
    checkpoint = registry.read_checkpoint()
    serving = checkpoint.stages.get(args.stage)
    # Only what decides the evaluation: a promotion elsewhere in the log
    # leaves this record, and so the evaluation, as it was.
    where = {"root": args.registry, "stage": args.stage}
    if serving is None:
        atomic_write_bytes(args.out_model, b"")
        atomic_write_json(args.out, {"model_sha256": None, "registry": where})
        return
    stored = registry.model_path(serving.model_sha256)
    if not (stored / "model.rtm").is_file():
        raise InputError(
            f"the model serving {args.stage} is not in the registry's model store",
            where=str(stored / "model.rtm"),
            expected=f"model.rtm with sha256 {serving.model_sha256}",
            found="no file",
        )
    found = sha256_file(stored / "model.rtm").sha256
    if found != serving.model_sha256:
        raise InputError(
            f"the model serving {args.stage} is not the one stored",
            where=str(stored / "model.rtm"),
            expected=serving.model_sha256,
            found=found,
        )
    record = _verified_champion(
        stored / "model.rtm", policy, args.policy, f"the {args.stage} model's"
    )
    atomic_write_bytes(args.out_model, (stored / "model.rtm").read_bytes())
    atomic_write_json(args.out, {**record, "registry": where})


def cmd_sign(args: argparse.Namespace) -> None:
    """Sign the chain's statements (a local, never cached action: it reads the key)."""
    from retrain.attest.keys import ensure_dev_key, load_signer
    from retrain.attest.sign import sign_chain

    config = _read_json(args.signing_config)
    if config.get("key"):
        key_path = Path(config["key"])
        note = f"signing key {key_path} (RETRAIN_SIGNING_KEY)"
    else:
        pair, created = ensure_dev_key(Path(config["dev_key"]))
        key_path = pair.private
        note = (
            f"no signing key configured (set RETRAIN_SIGNING_KEY); signed with the development key "
            f"{key_path}{' (created now)' if created else ''}, which no policy trusts unless you add it"
        )
    signer = load_signer(key_path)
    statements = {
        link: Path(path).read_bytes()
        for link, path in _pairs(args.statement, "--statement").items()
    }
    chain = sign_chain(
        Path(args.out_dir), statements, [signer], model=Path(args.model), private_key=key_path
    )
    print(
        f"retrain: {note}; key {signer.public_key.keyid[:12]}; wrote {', '.join(p.name for p in chain.files)}"
    )


def _read_status(paths: Sequence[str]) -> dict[str, str]:
    status: dict[str, str] = {}
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(" ")
            if key.startswith("STABLE_RETRAIN_"):
                status[key[len("STABLE_RETRAIN_") :]] = value.strip()
    return status


def cmd_provenance(args: argparse.Namespace) -> None:
    from retrain.attest.provenance import (
        BuildProvenance,
        ResourceDescriptor,
        digest_of_description,
    )
    from retrain.hermetic import ACTION_ENV

    subjects = tuple(
        ResourceDescriptor(name=name, digest={"sha256": sha256_file(path).sha256})
        for name, path in sorted(_pairs(args.subject, "--subject").items())
    )
    sources = sorted({s for s in args.source})
    source_files = [(s, sha256_file(s).sha256) for s in sources]
    status = _read_status(args.status)
    commit = status.get("GIT_COMMIT", "")
    tree_state = status.get("GIT_TREE_STATE", "unknown")
    source_digest: dict[str, str] = {"sha256": tree_digest(source_files).removeprefix("sha256:")}
    if commit:
        source_digest["gitCommit"] = commit
    deps: list[ResourceDescriptor] = [
        ResourceDescriptor(
            name="source",
            digest=source_digest,
            annotations={"files": len(source_files), "gitTreeState": tree_state},
        )
    ]
    deps += [ResourceDescriptor(name=path, digest={"sha256": sha}) for path, sha in source_files]
    env = _read_json(args.env_json)
    deps.append(
        ResourceDescriptor(
            name=args.lock_name,
            digest={"sha256": env["lock"]["sha256"]},
            annotations={
                "role": "lock",
                "sitePackagesDigest": env["site_packages_digest"],
                "distributions": [f"{d['name']}=={d['version']}" for d in env["distributions"]],
            },
        )
    )
    datasets = []
    for path in args.dataset_verified:
        rec = _read_json(path)
        datasets.append(rec["manifest"]["path"])
        deps.append(
            ResourceDescriptor(
                name=f"dataset/{rec['name']}",
                uri=rec["manifest"]["path"],
                digest={"sha256": rec["dataset_digest"].removeprefix("sha256:")},
                annotations={
                    "manifestSha256": rec["manifest"]["sha256"],
                    "rows": rec["rows"],
                    "files": rec["files"],
                    "bytes": rec["bytes"],
                    "schemaFingerprint": rec["schema_fingerprint"],
                    "location": rec["location"],
                },
            )
        )
    # The champion the evaluation compared with (a model, by digest): an
    # input of metrics.json, gates.txt and report.html.
    subject_paths = _pairs(args.subject, "--subject")
    if "metrics.json" in subject_paths:
        champion = (_read_json(str(subject_paths["metrics.json"])).get("champion") or {}).get(
            "sha256"
        )
        if champion:
            deps.append(
                ResourceDescriptor(
                    name="champion", digest={"sha256": champion}, annotations={"role": "champion"}
                )
            )
    toolchain = _read_json(args.toolchain_json)
    py = toolchain["python"]
    deps.append(
        ResourceDescriptor(
            name="toolchain/python",
            digest={"sha256": py["executable_sha256"]},
            annotations={
                "implementation": py["implementation"],
                "version": py["version"],
                "libpythonSha256": py["libpython_sha256"],
                "stdlibDigest": py["stdlib_digest"],
            },
        )
    )
    bazel = {"version": status.get("BAZEL_VERSION", "unknown")}
    bazel_digest = status.get("BAZEL_SHA256") or digest_of_description(bazel)
    deps.append(
        ResourceDescriptor(
            name="toolchain/bazel", digest={"sha256": bazel_digest}, annotations=bazel
        )
    )
    deps.append(
        ResourceDescriptor(
            name="toolchain/platform",
            digest={"sha256": digest_of_description(toolchain["platform"])},
            annotations=toolchain["platform"],
        )
    )
    report = _read_json(args.train_report)
    env_vars = dict(ACTION_ENV)
    env_vars["OPENBLAS_CORETYPE"] = toolchain["blas_coretype"]
    provenance = BuildProvenance(
        subjects=subjects,
        external_parameters={
            "target": args.target,
            "recipe": {"path": args.recipe, "sha256": sha256_file(args.recipe).sha256},
            "datasets": datasets,
        },
        internal_parameters={
            "actionEnvironment": dict(sorted(env_vars.items())),
            "blas": report["blas"],
            "sitePackagesDigest": env["site_packages_digest"],
        },
        resolved_dependencies=tuple(deps),
        builder_version={"retrain": __version__, "bazel": bazel["version"]},
    )
    atomic_write_json(args.out, provenance.to_statement())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="retrain-action", fromfile_prefix_chars="@")
    sub = p.add_subparsers(dest="command", required=True)

    def data_args(sp: argparse.ArgumentParser, prefix: str = "", required: bool = True) -> None:
        sp.add_argument(f"--{prefix}manifest", required=required, default=None)
        sp.add_argument(f"--{prefix}root", default="")
        sp.add_argument(f"--{prefix}file", action="append", default=[])

    v = sub.add_parser("verify-dataset")
    data_args(v)
    data_args(v, "reference-", required=False)
    v.add_argument("--quality", default=None)
    v.add_argument("--quality-uri", default=None)
    v.add_argument("--manifest-uri", required=True)
    v.add_argument("--location", choices=("repo", "store"), required=True)
    v.add_argument("--out", required=True)
    v.add_argument("--out-statement", required=True)
    v.set_defaults(func=cmd_verify_dataset)

    t = sub.add_parser("train")
    data_args(t)
    t.add_argument("--recipe", required=True)
    t.add_argument("--verified", required=True)
    t.add_argument("--source", action="append", default=[])
    t.add_argument("--env-json", required=True)
    t.add_argument("--out-model", required=True)
    t.add_argument("--out-report", required=True)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate")
    data_args(e)
    data_args(e, "train-")
    e.add_argument("--recipe", required=True)
    e.add_argument("--gates", required=True)
    e.add_argument("--gates-uri", required=True)
    e.add_argument("--model", required=True)
    e.add_argument("--champion-model", default=None)
    e.add_argument("--champion-record", default=None)
    e.add_argument("--quality-statement", action="append", default=[])
    e.add_argument("--out", required=True)
    e.add_argument("--out-gates", required=True)
    e.add_argument("--out-statement", required=True)

    r = sub.add_parser("report")
    r.add_argument("--metrics", required=True)
    r.add_argument("--train-report", required=True)
    r.add_argument("--dataset-statement", action="append", default=[])
    r.add_argument("--target", required=True)
    r.add_argument("--out", required=True)
    r.set_defaults(func=cmd_report)

    c = sub.add_parser("verify-champion")
    c.add_argument("--model", required=True)
    c.add_argument("--policy", required=True)
    c.add_argument("--out", required=True)
    c.set_defaults(func=cmd_verify_champion)

    rc = sub.add_parser("registry-champion")
    rc.add_argument("--registry", required=True)
    rc.add_argument("--stage", required=True)
    rc.add_argument("--policy", required=True)
    rc.add_argument("--out-model", required=True)
    rc.add_argument("--out", required=True)
    rc.set_defaults(func=cmd_registry_champion)
    e.set_defaults(func=cmd_evaluate)

    pv = sub.add_parser("provenance")
    pv.add_argument("--target", required=True)
    pv.add_argument("--subject", action="append", default=[])
    pv.add_argument("--recipe", required=True)
    pv.add_argument("--train-report", required=True)
    pv.add_argument("--dataset-verified", action="append", default=[])
    pv.add_argument("--source", action="append", default=[])
    pv.add_argument("--lock-name", required=True)
    pv.add_argument("--env-json", required=True)
    pv.add_argument("--toolchain-json", required=True)
    pv.add_argument("--status", action="append", default=[])
    pv.add_argument("--out", required=True)
    pv.set_defaults(func=cmd_provenance)

    sg = sub.add_parser("sign")
    sg.add_argument("--statement", action="append", default=[])
    sg.add_argument("--model", required=True)
    sg.add_argument("--out-dir", required=True)
    sg.add_argument("--signing-config", required=True)
    sg.set_defaults(func=cmd_sign)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from retrain.hermetic import enter_action

    try:
        enter_action()
        args = _parser().parse_args(argv)
        args.func(args)
    except RetrainError as exc:
        lines = exc.lines() if hasattr(exc, "lines") else [exc.diagnostics()]
        for line in lines:
            print(f"retrain: error: {line}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a bug, not bad input: say so, with the traceback
        traceback.print_exc()
        print(
            f"retrain: internal error: {type(exc).__name__}: {exc} (a bug in retrain)",
            file=sys.stderr,
        )
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(main())
