"""The ``retrain`` command: thin wrappers over library calls.

Each command parses its arguments, calls one library function and prints the
result. Errors from the library (``RetrainError``) become one line per
problem on stderr and an exit code: 2 for unusable input or usage, 1 for a
check that failed, 0 for success. ``--verbose`` adds tracebacks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from retrain import __version__
from retrain.errors import CheckFailed, RetrainError

__all__ = ["main"]


_STATE = {"verbose": False}


class _Failures(Exception):
    """Several problems, already formatted; raised to end a command with an exit code."""

    def __init__(self, lines: list[str], exit_code: int) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines
        self.exit_code = exit_code


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, prog_name="retrain")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Reproducible, attested builds of continuously retrained models."""
    ctx.obj = {"verbose": verbose}
    _STATE["verbose"] = verbose


# --------------------------------------------------------------------------
# manifest


@cli.group()
def manifest() -> None:
    """Create and verify data manifests."""


@manifest.command("create")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Dataset name recorded in the manifest.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the manifest (default: stdout).",
)
@click.option(
    "--put", "put_store", is_flag=True, help="Also copy the files into the content-addressed store."
)
@click.option(
    "--store",
    "store_location",
    default=None,
    help="Store for --put (default: RETRAIN_STORE or the user cache).",
)
def manifest_create(
    directory: Path, name: str, output: Path | None, put_store: bool, store_location: str | None
) -> None:
    """Hash every Parquet file under DIRECTORY and write its manifest."""
    from retrain._internal.fsio import atomic_write_bytes
    from retrain.datagen import read_origin
    from retrain.manifest import create_manifest
    from retrain.store import ContentStore

    m = create_manifest(directory, name=name, origin=read_origin(directory))
    data: bytes = m.to_json_bytes()
    if put_store:
        store = ContentStore(store_location) if store_location else ContentStore.default()
        new = store.put_dataset(m, directory)
        click.echo(f"stored {new} new of {len(m.entries)} files in {store.location}", err=True)
    if output is None:
        click.echo(data.decode(), nl=False)
    else:
        atomic_write_bytes(output, data)
        click.echo(
            f"wrote {output}: {len(m.entries)} files, {m.rows} rows, {m.dataset_digest}", err=True
        )


@manifest.command("verify")
@click.argument(
    "manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False, path_type=Path)
)
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option(
    "--store",
    "store_location",
    default=None,
    help="Store to verify against (default: RETRAIN_STORE or the user cache).",
)
def manifest_verify(
    manifest_path: Path, directory: Path | None, store_location: str | None
) -> None:
    """Check a manifest, and its data in DIRECTORY (or in the store when omitted)."""
    from retrain.manifest import failures_exit_code, load_manifest, verify_dataset, verify_directory
    from retrain.store import ContentStore

    m = load_manifest(manifest_path)
    if directory is not None:
        failures = verify_directory(m, directory, manifest_where=str(manifest_path))
        place = str(directory)
    else:
        store = ContentStore(store_location) if store_location else ContentStore.default()
        if not store.is_local:
            raise click.UsageError(
                "verifying against a remote store is not supported; fetch it first"
            )
        located = {e.path: store.local_path(e.sha256) for e in m.entries}

        def in_store(entry: object, path: Path) -> None:
            return None

        failures = verify_dataset(
            m, located, containment=in_store, manifest_where=str(manifest_path)
        )
        place = store.location
    if failures:
        raise _Failures([f.diagnostics() for f in failures], failures_exit_code(failures))
    click.echo(
        f"ok: dataset {m.name}: {len(m.entries)} files, {m.rows} rows, {m.total_bytes} bytes in {place}; {m.dataset_digest}"
    )


# --------------------------------------------------------------------------
# datagen


@cli.command("datagen")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--rows", type=click.IntRange(min=1), required=True, help="Number of rows.")
@click.option(
    "--seed", type=click.IntRange(min=0, max=2**63 - 1), default=20261126, show_default=True
)
@click.option(
    "--drift",
    type=float,
    default=0.0,
    show_default=True,
    help="Covariate and concept shift, in [-5, 5].",
)
@click.option(
    "--files",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Number of Parquet files.",
)
@click.option(
    "--id-offset",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="First customer_id.",
)
def datagen(
    directory: Path, rows: int, seed: int, drift: float, files: int, id_offset: int
) -> None:
    """Generate a synthetic credit-risk dataset into DIRECTORY (which must not exist)."""
    from retrain.datagen import GeneratorSpec, write_dataset

    paths = write_dataset(
        GeneratorSpec(rows=rows, seed=seed, drift=drift, id_offset=id_offset),
        directory,
        files=files,
    )
    click.echo(f"wrote {len(paths)} files, {rows} rows to {directory}")


# --------------------------------------------------------------------------
# store


@cli.group()
def store() -> None:
    """The content-addressed data store."""


@store.command("put")
@click.argument(
    "manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False, path_type=Path)
)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--store", "store_location", default=None)
def store_put(manifest_path: Path, directory: Path, store_location: str | None) -> None:
    """Verify DIRECTORY against MANIFEST, then copy its files into the store."""
    from retrain.manifest import failures_exit_code, load_manifest, verify_directory
    from retrain.store import ContentStore

    m = load_manifest(manifest_path)
    failures = verify_directory(m, directory, manifest_where=str(manifest_path))
    if failures:
        raise _Failures([f.diagnostics() for f in failures], failures_exit_code(failures))
    s = ContentStore(store_location) if store_location else ContentStore.default()
    new = s.put_dataset(m, directory)
    click.echo(f"stored dataset {m.name}: {new} new of {len(m.entries)} files in {s.location}")


@store.command("fetch")
@click.argument(
    "manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False, path_type=Path)
)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--store", "store_location", default=None)
@click.option("--copy", is_flag=True, help="Copy files instead of symlinking them (local stores).")
def store_fetch(
    manifest_path: Path, directory: Path, store_location: str | None, copy: bool
) -> None:
    """Lay out MANIFEST's dataset in DIRECTORY from the store, verifying every file."""
    from retrain.manifest import load_manifest
    from retrain.store import ContentStore

    m = load_manifest(manifest_path)
    s = ContentStore(store_location) if store_location else ContentStore.default()
    s.materialize(m, directory, link=not copy)
    click.echo(f"fetched dataset {m.name}: {len(m.entries)} files into {directory}")


@store.command("path")
def store_path() -> None:
    """Print where the default store is."""
    from retrain.store import default_store_location

    click.echo(default_store_location())


# --------------------------------------------------------------------------
# keys, signing, verification


@cli.command("keygen")
@click.argument("private_key", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
def keygen(private_key: Path | None, force: bool) -> None:
    """Create an ECDSA P-256 key pair: PRIVATE_KEY (0600) and its .pub beside it.

    The public key's file name is PRIVATE_KEY with its suffix replaced by
    .pub (keys/me.pem -> keys/me.pub). Without PRIVATE_KEY, creates the
    per-user development key that builds use when RETRAIN_SIGNING_KEY is not
    set. Use the pair for builds (RETRAIN_SIGNING_KEY=PRIVATE_KEY) and add
    the .pub file to a policy.
    """
    from retrain.attest.keys import dev_key_path, generate_key_pair

    pair = generate_key_pair(private_key or dev_key_path(), force=force)
    click.echo(f"wrote {pair.private} (private, mode 0600) and {pair.public}")
    click.echo(f"keyid {pair.keyid}")


F = TypeVar("F", bound=Callable[..., Any])

_POLICY_OPTIONS = [
    click.option(
        "--trust-root",
        "trust_roots",
        multiple=True,
        metavar="PUB.pem|KEYID",
        help="A root key you were given outside the repository: the policy must chain to a "
        "version it signed. Repeat for several (all must have signed the same version).",
    ),
    click.option(
        "--insecure-unsigned-policy",
        is_flag=True,
        help="Accept a policy whose root signatures do not verify (local experiments only; "
        "never for production promotions).",
    ),
]


def _policy_options(f: F) -> F:
    for option in reversed(_POLICY_OPTIONS):
        f = option(f)
    return f


def _load_policy(path: Path, trust_roots: tuple[str, ...], insecure: bool):  # type: ignore[no-untyped-def]
    from retrain.attest.trust import load_policy

    policy = load_policy(path, trust_roots=trust_roots, insecure_unsigned=insecure)
    if not policy.signed:
        click.echo(
            f"retrain: warning: {path} is not signed by its root; accepted because of "
            "--insecure-unsigned-policy",
            err=True,
        )
    return policy


def _reason(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from retrain.errors import InputError
    from retrain.registry.rules import reason_errors

    errors = reason_errors(value)
    if errors:
        # Not click.BadParameter: click would print its usage block around the line.
        raise InputError(errors[0], where="--reason")
    return value


@cli.command("verify")
@click.argument("model_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--policy",
    "policy_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Trust policy (attestations/policy.json).",
)
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Repository holding the data manifests (and, when present, the data).",
)
@click.option(
    "--registry",
    "registry_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A promotion registry whose recorded policy this one must not be older than, nor "
    "fail to chain to (default: attestations/registry under --repo, when it exists).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--at", "at_time", default=None, help="Verify as of this UTC time (YYYY-MM-DDTHH:MM:SSZ)."
)
@_policy_options
def verify(
    model_dir: Path,
    policy_path: Path,
    repo: Path,
    registry_dir: Path | None,
    as_json: bool,
    at_time: str | None,
    trust_roots: tuple[str, ...],
    insecure_unsigned_policy: bool,
) -> int:
    """Verify a model's attestation chain (dataset, build, evaluation) against a policy."""
    import json as _json

    from retrain.attest.policy import parse_time
    from retrain.attest.verify import verify_model

    now = parse_time(at_time, where=None, ctx="--at") if at_time else None
    policy = _load_policy(policy_path, trust_roots, insecure_unsigned_policy)
    registry_note = _check_recorded_policy(
        policy,
        policy_path,
        registry_dir or repo / "attestations" / "registry",
        explicit=registry_dir is not None,
    )
    report = verify_model(model_dir, policy, policy_where=str(policy_path), repo_root=repo, now=now)
    if as_json:
        click.echo(_json.dumps(report.to_dict(), indent=2, sort_keys=True))
        return report.exit_code
    if not report.ok:
        for failure in report.failures:
            click.echo(f"retrain: verify: {failure.message}", err=True)
        click.echo(f"FAILED: {len(report.failures)} check(s) failed for {model_dir}", err=True)
        return report.exit_code
    click.echo(
        f"OK: {model_dir} verifies against {policy_path} version {policy.version} "
        f"(expires {policy.expires:%Y-%m-%d}; trust: {policy.anchor})"
    )
    for link in report.links:
        click.echo(f"  {link.link:<10}  {link.subject:<40}  {link.detail}")
        click.echo(f"  {'':<10}  signed by {', '.join(link.signers)}")
    for note in (*report.notes, *([registry_note] if registry_note else [])):
        click.echo(f"  note: {note}")
    return 0


def _check_recorded_policy(
    policy: Any, policy_path: Path, registry_dir: Path, *, explicit: bool
) -> str | None:
    """A policy older than (or not chaining to) the one a registry recorded verifies nothing.

    The default registry (the repository's) may belong to another policy
    than the one given: a checkpoint this policy cannot judge is a note,
    unless the registry was named; a policy rollback is always refused.
    """
    from retrain.registry import Registry
    from retrain.registry.log import CheckpointUnknownSigners

    if not explicit and not (registry_dir / "checkpoint.json").exists():
        return None
    try:
        checkpoint = Registry(registry_dir, policy, policy_where=str(policy_path)).read_checkpoint()
    except CheckpointUnknownSigners as exc:
        # Well formed, signed by keys this policy does not know: another
        # project's (or policy's) registry. Any other defect is not excused.
        if explicit:
            raise
        return f"registry {registry_dir} not consulted: {exc.diagnostics()}"
    if checkpoint.policy is None and explicit:
        return f"registry {registry_dir} has recorded no policy version yet"
    return None


@cli.command("sign")
@click.argument("model_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--key",
    "key_paths",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM ECDSA P-256 private key; repeat to sign with several (default: RETRAIN_SIGNING_KEY, else the development key).",
)
@click.option(
    "--append",
    is_flag=True,
    help="Keep the existing signatures and add these (co-signing for a threshold).",
)
@click.option(
    "--keyless",
    is_flag=True,
    help="Sign the model with Sigstore keyless signing (needs network and an OIDC identity).",
)
def sign(model_dir: Path, key_paths: tuple[Path, ...], append: bool, keyless: bool) -> None:
    """(Re)sign the statements in MODEL_DIR and its model.sig bundle.

    Each *.intoto.jsonl gets an envelope over the same payload, signed with
    every --key (with --append, added to the signatures already there), after
    checking that the statements' subjects match the files beside them.
    model.sig is rewritten with the first key. With --keyless, only model.sig
    is written, through Sigstore's public-good Fulcio and Rekor.
    """
    import os

    from retrain.attest.envelope import read_link_envelope
    from retrain.attest.keys import ensure_dev_key, load_signer
    from retrain.attest.sign import LINK_FILES, MODEL_BUNDLE, sign_chain

    model = model_dir / "model.rtm"
    if keyless:
        from retrain.attest.keyless import sign_keyless

        sign_keyless(model, model_dir / MODEL_BUNDLE)
        click.echo(f"wrote {model_dir / MODEL_BUNDLE} (Sigstore keyless)")
        return
    env_key = os.environ.get("RETRAIN_SIGNING_KEY")
    privates = list(key_paths) or [Path(env_key) if env_key else ensure_dev_key()[0].private]
    signers = [load_signer(p) for p in privates]
    existing = {}
    for link, name in LINK_FILES.items():
        path = model_dir / name
        if path.exists():
            existing[link] = read_link_envelope(path)
    if not existing:
        raise click.UsageError(f"{model_dir} holds no *.intoto.jsonl statements to sign")
    statements = {link: envelope.payload for link, envelope in existing.items()}
    chain = sign_chain(
        model_dir,
        statements,
        signers,
        model=model,
        private_key=privates[0],
        cosign=existing if append else None,
    )
    keyids = ", ".join(s.public_key.keyid[:12] for s in signers)
    click.echo(f"signed {', '.join(p.name for p in chain.files)} with key(s) {keyids}")


@cli.group()
def policy() -> None:
    """Trust policies."""


def _pairs(values: tuple[str, ...], flag: str) -> list[tuple[str, str]]:
    out = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise click.UsageError(f"{flag} must be NAME=VALUE, got {value!r}")
        out.append((name, rest))
    return out


def _read_public(path: str, flag: str) -> str:
    from retrain._internal.fsio import read_regular_bytes
    from retrain.errors import KeyFileError

    try:
        return read_regular_bytes(path, limit=64 << 10, what=f"{flag} public key").decode("ascii")
    except UnicodeDecodeError:
        raise KeyFileError("not a PEM public key (not ASCII)", where=path) from None


@policy.command("init")
@click.option(
    "--key",
    "keys",
    multiple=True,
    required=True,
    metavar="NAME=PUBLIC.pem",
    help="A key that signs links and promotions, by name; repeat for several.",
)
@click.option(
    "--root",
    "roots",
    multiple=True,
    required=True,
    metavar="NAME=PUBLIC.pem",
    help="A root key: signs the policy itself (and its next version); repeat for several.",
)
@click.option(
    "--root-threshold",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many root keys must sign this version (and the next).",
)
@click.option(
    "--supersedes",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The signed policy this one replaces: the new one is its next version, carries it as "
    "history, and must be signed by its root threshold too.",
)
@click.option(
    "--step",
    "steps",
    multiple=True,
    metavar="STEP=NAME[,NAME]",
    help="Which keys may sign a step (default: every --key, every step).",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="STEP=N",
    help="Signatures a step needs (default 1).",
)
@click.option(
    "--steps",
    "required_steps",
    default="dataset,holdout,build,evaluation",
    show_default=True,
    help="The links a model's chain must have (a pipeline without a pinned holdout has no holdout link).",
)
@click.option(
    "--require-champion/--no-require-champion",
    default=True,
    show_default=True,
    help="A model may replace the one serving production only if its evaluation compared it with that model.",
)
@click.option(
    "--allow-dirty",
    default="shadow",
    show_default=True,
    metavar="STAGE[,STAGE]",
    help="Stages a model built from an uncommitted (dirty) tree may reach; '' for none.",
)
@click.option("--not-before", default=None, help="Valid from, YYYY-MM-DDTHH:MM:SSZ (default: now).")
@click.option("--expires", required=True, help="Expiry, YYYY-MM-DDTHH:MM:SSZ (UTC).")
@click.option("--description", default="", help="What the policy is for, recorded in it.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def policy_init(
    keys: tuple[str, ...],
    roots: tuple[str, ...],
    root_threshold: int,
    supersedes: Path | None,
    steps: tuple[str, ...],
    required_steps: str,
    thresholds: tuple[str, ...],
    require_champion: bool,
    allow_dirty: str,
    not_before: str | None,
    expires: str,
    description: str,
    output: Path,
) -> None:
    """Write a trust policy (unsigned) for the given keys; then sign it with `policy sign`."""
    from datetime import UTC, datetime

    from retrain.attest.policy import TrustPolicy, parse_time
    from retrain.attest.promotion import STAGES
    from retrain.attest.trust import read_policy_file, write_policy_file

    previous: tuple[Any, ...] = ()
    version = 1
    if supersedes is not None:
        current, history = read_policy_file(supersedes)
        if isinstance(current, TrustPolicy):
            raise click.UsageError(f"--supersedes {supersedes}: a format-1 policy has no version")
        previous = (*history, current)
        version = current.policy.version + 1
    dirty = tuple(s for s in allow_dirty.split(",") if s)
    unknown = sorted(set(dirty) - set(STAGES))
    if unknown:
        raise click.UsageError(f"--allow-dirty: unknown stage {unknown[0]!r}")
    try:
        limits = {step: int(n) for step, n in _pairs(thresholds, "--threshold")}
    except ValueError:
        raise click.UsageError("--threshold must be STEP=INTEGER") from None
    start = (
        parse_time(not_before, where=None, ctx="--not-before")
        if not_before
        else datetime.now(UTC).replace(microsecond=0)
    )
    built = TrustPolicy.for_keys(
        [(name, _read_public(path, "--key")) for name, path in _pairs(keys, "--key")],
        root_keys=[(name, _read_public(path, "--root")) for name, path in _pairs(roots, "--root")],
        root_threshold=root_threshold,
        version=version,
        not_before=start,
        expires=parse_time(expires, where=None, ctx="--expires"),
        step_keys={step: names.split(",") for step, names in _pairs(steps, "--step")} or None,
        thresholds=limits,
        steps=tuple(s for s in required_steps.split(",") if s),
        require_champion=require_champion,
        allow_dirty=dirty,
        description=description,
    )
    write_policy_file(output, built, previous=previous)
    click.echo(
        f"wrote {output}: version {built.version}, {len(built.keys)} key(s), steps "
        f"{', '.join(built.steps)}; unsigned: sign it with "
        f"'retrain policy sign {output} --key ROOT.pem'"
        + (f" (by the roots of version {version - 1} and of version {version})" if previous else "")
    )


@policy.command("sign")
@click.argument("policy_path", metavar="POLICY", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_paths",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A root key's private PEM; repeat to sign with several.",
)
def policy_sign(policy_path: Path, key_paths: tuple[Path, ...]) -> int:
    """Add root signatures to POLICY's current version (the content never changes)."""
    from retrain.attest.keys import load_signer
    from retrain.attest.trust import sign_policy_file

    outcome = sign_policy_file(policy_path, [load_signer(p) for p in key_paths])
    click.echo(
        f"signed {policy_path} version {outcome.version} with "
        + ", ".join(k[:12] for k in outcome.signed_by)
    )
    click.echo(f"  own root: {outcome.own_root or 'threshold met'}")
    if outcome.version > 1 and outcome.has_previous:
        click.echo(f"  previous root: {outcome.previous_root or 'threshold met'}")
    return 0 if outcome.own_root is None and outcome.previous_root is None else 1


@policy.command("verify")
@click.argument("policy_path", metavar="POLICY", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--trust-root",
    "trust_roots",
    multiple=True,
    metavar="PUB.pem|KEYID",
    help="A root key you were given outside the repository.",
)
def policy_verify(policy_path: Path, trust_roots: tuple[str, ...]) -> None:
    """Check a policy's root signatures, its version chain, and its anchor."""
    from retrain.attest.policy import format_time
    from retrain.attest.trust import load_policy

    policy = load_policy(policy_path, trust_roots=trust_roots)
    assert policy.root is not None
    roots = ", ".join(policy.key_label(k) for k in policy.root.functionaries)
    click.echo(
        f"OK: {policy_path} version {policy.version} ({policy.digest}), valid "
        f"{format_time(policy.not_before or policy.expires)} .. {format_time(policy.expires)}"
    )
    click.echo(f"  root: {policy.root.threshold} of [{roots}]")
    if policy.history:
        click.echo(f"  history: versions {', '.join(map(str, sorted(policy.history)))}, chained")
    click.echo(f"  trust: {policy.anchor}")


# --------------------------------------------------------------------------
# the promotion registry

_REGISTRY_OPTIONS = [
    click.option(
        "--registry",
        "registry_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("attestations/registry"),
        show_default=True,
        help="The registry directory.",
    ),
    click.option(
        "--policy",
        "policy_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path("attestations/policy.json"),
        show_default=True,
        help="The trust policy.",
    ),
]


def _registry_options(f: F) -> F:
    for option in reversed([*_REGISTRY_OPTIONS, *_POLICY_OPTIONS]):
        f = option(f)
    return f


def _open_registry(  # type: ignore[no-untyped-def]
    registry_dir: Path, policy_path: Path, trust_roots: tuple[str, ...], insecure: bool
):
    from retrain.registry import Registry

    policy = _load_policy(policy_path, trust_roots, insecure)
    return Registry(registry_dir, policy, policy_where=str(policy_path))


def _signers(key_paths: tuple[Path, ...]) -> list[object]:
    import os

    from retrain.attest.keys import ensure_dev_key, load_signer

    env_key = os.environ.get("RETRAIN_SIGNING_KEY")
    privates = list(key_paths) or [Path(env_key) if env_key else ensure_dev_key()[0].private]
    return [load_signer(p) for p in privates]


def _print_state(registry, checkpoint, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    import json as _json

    if as_json:
        click.echo(_json.dumps(_state_dict(registry, checkpoint), indent=2, sort_keys=True))
        return
    canary = checkpoint.stages.get("canary")
    split = {
        "production": 100 - (canary.traffic if canary else 0),
        "canary": canary.traffic if canary else 0,
        "shadow": 0,
    }
    click.echo(f"{'stage':<11} {'model':<14} {'traffic':>8}  {'entry':>6}  {'promoted':<20}  by")
    for stage in ("production", "canary", "shadow"):
        s = checkpoint.stages.get(stage)
        if s is None:
            click.echo(f"{stage:<11} {'-':<14} {'-':>8}  {'-':>6}  {'-':<20}  -")
            continue
        traffic = "mirror" if stage == "shadow" else f"{split[stage]}%"
        by = ", ".join(registry.policy.key_label(k) for k in s.approvers)
        click.echo(
            f"{stage:<11} {s.model_sha256[:12]:<14} {traffic:>8}  {s.position:>6}  {s.time:<20}  {by}"
        )
    click.echo(f"log: {checkpoint.size} entries, head {checkpoint.head or '-'}")


def _state_dict(registry: Any, checkpoint: Any) -> dict[str, Any]:
    out: dict[str, Any] = checkpoint.to_dict()
    out["signers"] = {
        stage: [registry.policy.key_label(k) for k in s.approvers]
        for stage, s in checkpoint.stages.items()
        if s is not None
    }
    return out


@cli.command("promote")
@click.argument("model_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--to", "stage", type=click.Choice(["shadow", "canary", "production"]), required=True)
@click.option(
    "--traffic",
    type=click.IntRange(0, 100),
    default=None,
    help="Canary traffic in percent (default 10).",
)
@click.option(
    "--key",
    "key_paths",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Approver's private key; repeat for several approvers (default: RETRAIN_SIGNING_KEY).",
)
@click.option(
    "--reason", default="", callback=_reason, help="Why, recorded in the signed entry (one line)."
)
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Repository holding the data manifests (and data) the chain names.",
)
@click.option("--json", "as_json", is_flag=True)
@_registry_options
def promote(
    model_dir: Path,
    stage: str,
    traffic: int | None,
    key_paths: tuple[Path, ...],
    reason: str,
    repo: Path,
    as_json: bool,
    registry_dir: Path,
    policy_path: Path,
    trust_roots: tuple[str, ...],
    insecure_unsigned_policy: bool,
) -> None:
    """Verify MODEL_DIR's whole chain, then promote it to a stage (a signed log entry)."""
    registry = _open_registry(registry_dir, policy_path, trust_roots, insecure_unsigned_policy)
    result = registry.promote(
        model_dir,
        stage,
        signers=_signers(key_paths),
        traffic=traffic,
        reason=reason,
        repo_root=repo,
    )
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"promoted {result.entry.predicate.model_sha256[:12]} to {stage} (entry {result.entry.position})",
        err=as_json,
    )
    _print_state(registry, result.checkpoint, as_json)


@cli.command("rollback")
@click.option(
    "--to", "target", default=None, help="A model that served production before (sha256 or prefix)."
)
@click.option("--key", "key_paths", multiple=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--reason", default="", callback=_reason, help="Why (one line).")
@click.option("--json", "as_json", is_flag=True)
@_registry_options
def rollback(
    target: str | None,
    key_paths: tuple[Path, ...],
    reason: str,
    as_json: bool,
    registry_dir: Path,
    policy_path: Path,
    trust_roots: tuple[str, ...],
    insecure_unsigned_policy: bool,
) -> None:
    """Put production back on the previous (or a named) production model."""
    registry = _open_registry(registry_dir, policy_path, trust_roots, insecure_unsigned_policy)
    result = registry.rollback(signers=_signers(key_paths), to=target, reason=reason)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"rolled production back to {result.entry.predicate.model_sha256[:12]} (entry {result.entry.position})",
        err=as_json,
    )
    _print_state(registry, result.checkpoint, as_json)


@cli.command("status")
@click.option("--json", "as_json", is_flag=True)
@_registry_options
def status(
    as_json: bool,
    registry_dir: Path,
    policy_path: Path,
    trust_roots: tuple[str, ...],
    insecure_unsigned_policy: bool,
) -> None:
    """Which model serves each stage, the traffic split, who promoted it and when."""
    registry = _open_registry(registry_dir, policy_path, trust_roots, insecure_unsigned_policy)
    _print_state(registry, registry.read_checkpoint(), as_json)


@cli.command("history")
@click.option("--json", "as_json", is_flag=True)
@_registry_options
def history(
    as_json: bool,
    registry_dir: Path,
    policy_path: Path,
    trust_roots: tuple[str, ...],
    insecure_unsigned_policy: bool,
) -> None:
    """The promotion log, oldest first."""
    import json as _json

    registry = _open_registry(registry_dir, policy_path, trust_roots, insecure_unsigned_policy)
    entries = registry.history()
    if as_json:
        click.echo(
            _json.dumps(
                [e.predicate.to_dict() | {"hash": e.hash} for e in entries],
                indent=2,
                sort_keys=True,
            )
        )
        return
    for e in entries:
        p = e.predicate
        by = ", ".join(registry.policy.key_label(k) for k in p.approvers)
        what = f"{p.action} {p.model_sha256[:12]} -> {p.stage}" + (
            f" {p.traffic}%" if p.stage == "canary" else ""
        )
        # A signed reason is shown escaped: it must not print as a line of its own.
        reason = f"  ({_printable(p.reason)})" if p.reason else ""
        click.echo(f"{e.position:>6}  {p.time}  {what:<40}  by {_printable(by)}{reason}")


def _printable(text: str) -> str:
    """Text as one printable line: control characters shown as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@cli.command("audit")
@click.option("--json", "as_json", is_flag=True)
@_registry_options
def audit(
    as_json: bool,
    registry_dir: Path,
    policy_path: Path,
    trust_roots: tuple[str, ...],
    insecure_unsigned_policy: bool,
) -> int:
    """Re-verify the whole log and every model it names; exit 1 at the first broken entry."""
    import json as _json

    registry = _open_registry(registry_dir, policy_path, trust_roots, insecure_unsigned_policy)
    report = registry.audit()
    if as_json:
        click.echo(_json.dumps(report.to_dict(), indent=2, sort_keys=True))
        return 0 if report.ok else 1
    if not report.ok:
        click.echo(f"retrain: audit: {report.first_broken}", err=True)
        return 1
    for note in report.notes:
        click.echo(f"note: {note}")
    click.echo(
        f"OK: {report.entries} entries and {report.models} models verify against {policy_path} "
        f"version {registry.policy.version} (trust: {registry.policy.anchor})"
    )
    return 0


# --------------------------------------------------------------------------
# rebuilding


def _resolve_model(target: str, registry_dir: Path) -> Path:
    path = Path(target)
    if path.is_dir():
        return path
    if path.is_file():
        return path.parent
    models = registry_dir / "models"
    matches = (
        sorted(p for p in models.iterdir() if p.name.startswith(target)) if models.is_dir() else []
    )
    if len(matches) != 1:
        raise click.UsageError(
            f"{target!r} is neither a model directory, an attestation file, nor one model in {models} "
            f"({len(matches)} match)"
        )
    return matches[0]


def _print_rebuild(report: Any) -> None:
    label = f"{Path(report.model).name[:12]} ({report.target} @ {str(report.commit)[:12]})"
    if report.identical:
        trained = (
            "training executed" if "RetrainTrain" in report.executed else "training did NOT execute"
        )
        click.echo(
            f"bit-identical: {label}: {len(report.outputs)} of {len(report.outputs)} outputs "
            f"({report.seconds:.0f} s, {len(report.executed)} actions run, {trained})"
        )
        for o in report.outputs:
            click.echo(f"  {o.name:<20} sha256 {o.recorded}")
        for note in report.recreated:
            click.echo(f"  {note}")
    else:
        differing = [o for o in report.outputs if not o.identical]
        click.echo(f"NOT bit-identical: {label}", err=True)
        if report.outputs:
            click.echo(f"  {'output':<20} {'recorded':<16} {'rebuilt':<16}", err=True)
            for o in report.outputs:
                mark = "same" if o.identical else "DIFFERS"
                click.echo(
                    f"  {o.name:<20} {o.recorded[:12]:<16} {str(o.rebuilt)[:12]:<16} {mark}",
                    err=True,
                )
            click.echo(f"  {len(differing)} of {len(report.outputs)} outputs differ", err=True)
        for p in report.problems:
            click.echo(f"retrain: rebuild: could not recreate {p.line()}", err=True)
    for change in report.toolchain_changes:
        click.echo(f"  toolchain changed: {change}", err=not report.identical)


@cli.command("rebuild")
@click.argument("targets", nargs=-1, metavar="[ATTESTATION_OR_DIGEST]...")
@click.option("--all", "all_models", is_flag=True, help="Rebuild every model in the registry.")
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The git repository holding the recorded commits.",
)
@click.option("--keep", is_flag=True, help="Keep the worktree and output base (for debugging).")
@click.option("--json", "as_json", is_flag=True)
@_registry_options
def rebuild_command(
    targets: tuple[str, ...],
    all_models: bool,
    repo: Path,
    keep: bool,
    as_json: bool,
    registry_dir: Path,
    policy_path: Path,
    trust_roots: tuple[str, ...],
    insecure_unsigned_policy: bool,
) -> int:
    """Rebuild models from their attestations and compare every output, bit for bit.

    Each model's chain is verified; its build provenance names the commit,
    target, sources, lock, datasets and toolchain. The sources are checked
    out at the commit in a temporary worktree, the datasets are taken from
    the content-addressed store by digest (or the repository) and verified,
    and the target is built in a fresh Bazel output base with no cache.
    Exit 0 when every output is bit-identical, 1 otherwise.
    """
    import json as _json

    from retrain.rebuild import rebuild

    policy = _load_policy(policy_path, trust_roots, insecure_unsigned_policy)
    models = [_resolve_model(t, registry_dir) for t in targets]
    if all_models:
        store = registry_dir / "models"
        models += (
            sorted(p for p in store.iterdir() if p.is_dir() and not p.name.startswith("."))
            if store.is_dir()
            else []
        )
    if all_models and not models:
        raise CheckFailed(
            "the registry holds no model to rebuild",
            where=str(registry_dir / "models"),
            expected="at least one promoted model",
            found="none",
        )
    if not models:
        raise click.UsageError("name a model to rebuild, or --all")
    reports = []
    if len(models) > 1 and not as_json:
        with click.progressbar(models, label="rebuilding", file=sys.stderr) as bar:
            for model in bar:
                reports.append(
                    rebuild(
                        model, repo=repo, policy=policy, policy_where=str(policy_path), keep=keep
                    )
                )
    else:
        for model in models:
            reports.append(
                rebuild(
                    model,
                    repo=repo,
                    policy=policy,
                    policy_where=str(policy_path),
                    keep=keep,
                    progress=(lambda m: click.echo(f"  {m}", err=True))
                    if not as_json
                    else (lambda _: None),
                )
            )
    if as_json:
        click.echo(_json.dumps([r.to_dict() for r in reports], indent=2, sort_keys=True))
    else:
        for report in reports:
            _print_rebuild(report)
        if len(reports) > 1:
            ok = sum(r.identical for r in reports)
            click.echo(
                f"{ok} of {len(reports)} models rebuilt bit-identical", err=ok != len(reports)
            )
    return 0 if all(r.identical for r in reports) else 1


# --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    _STATE["verbose"] = False
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            standalone_mode=False,
            prog_name="retrain",
        )
        return result if isinstance(result, int) else 0
    except _Failures as exc:
        for line in exc.lines:
            click.echo(f"retrain: error: {line}", err=True)
        return exc.exit_code
    except RetrainError as exc:
        if _STATE["verbose"]:
            import traceback

            traceback.print_exc()
        lines = exc.lines() if hasattr(exc, "lines") else [exc.diagnostics()]
        for line in lines:
            click.echo(f"retrain: error: {line}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        click.echo("retrain: aborted", err=True)
        return 130
    except OSError as exc:
        if _STATE["verbose"]:
            import traceback

            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"retrain: error: {where}{exc.strerror or exc}", err=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
