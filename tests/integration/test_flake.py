"""The Nix flake, evaluated with Debian's nix-bin against a stand-in nixpkgs.

nixpkgs cannot be fetched here, so `--override-input nixpkgs` points the
flake at tests/nix/nixpkgs-stub: the same names and argument shapes, real
derivations, nothing built or fetched. Nix runs with flakes turned on by its
own command line, a private store and private configuration in a temporary
directory, offline. What these tests cannot prove (that the real nixpkgs
accepts these arguments, that the wheels install, that Bazel builds the
model under `nix develop`) is listed in docs/nix.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.nix import NIXPKGS_STUB, ROOT, load_generator

gen = load_generator()
SYSTEMS = ("x86_64-linux", "aarch64-linux")
# What the flake reads; a flake in a git checkout sees only tracked files, so
# the tests evaluate a plain copy of exactly these (uncommitted edits included).
FLAKE_FILES = (
    "flake.nix",
    "flake.lock",
    "nix",
    "pyproject.toml",
    "README.md",
    "retrain",
    "requirements",
    "attestations",
    "data",
    "data_manifests",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("nix") is None,
        reason="nix is not on PATH (scripts/setup.sh installs Debian's nix-bin)",
    ),
]

Nix = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def nix(tmp_path_factory: pytest.TempPathFactory) -> Nix:
    """Runs `nix` with flakes on, a private store and config, offline."""
    base = tmp_path_factory.mktemp("nix")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(base / "home"),
        "NIX_CONF_DIR": str(base / "conf"),
        "XDG_CONFIG_HOME": str(base / "config"),
        "XDG_CACHE_HOME": str(base / "cache"),
        "XDG_DATA_HOME": str(base / "data"),
        "XDG_STATE_HOME": str(base / "state"),
    }
    for directory in ("home", "conf"):
        (base / directory).mkdir()
    common = [
        "--extra-experimental-features",
        "nix-command flakes",
        "--store",
        str(base / "store"),
        "--offline",
        "--option",
        "substituters",
        "",
        "--option",
        "build-users-group",
        "",
        "--option",
        "flake-registry",
        "",
    ]

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command, *rest = args
        result = subprocess.run(
            ["nix", command, *common, *rest],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            pytest.fail(f"nix {' '.join(args)} failed:\n{result.stderr}")
        return result

    run.store = base / "store"  # type: ignore[attr-defined]
    return run


def copy_flake(destination: Path) -> Path:
    destination.mkdir()
    for name in FLAKE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, destination / name, ignore=shutil.ignore_patterns("__pycache__", ".lock")
            )
        else:
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def flake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_flake(tmp_path_factory.mktemp("flake") / "retrain")


# The stand-in replaces the locked nixpkgs; the lock file itself stays as is.
AGAINST_STUB = ("--no-write-lock-file", "--override-input", "nixpkgs", f"path:{NIXPKGS_STUB}")


def evaluate(nix: Nix, flake_dir: Path, attribute: str, apply: str | None = None) -> Any:
    args = ["--json", *AGAINST_STUB, f"path:{flake_dir}#{attribute}"]
    if apply:
        args += ["--apply", apply]
    return json.loads(nix("eval", *args).stdout)


def locked_versions() -> dict[str, str]:
    return {
        name: dist.version for pins in gen.read_locks(ROOT).values() for name, dist in pins.items()
    }


def test_flake_show_lists_every_output_with_its_type(nix: Nix, flake: Path) -> None:
    shown = json.loads(nix("flake", "show", "--json", *AGAINST_STUB, f"path:{flake}").stdout)
    for system in SYSTEMS:
        for name in ("retrain", "default", "python", "wheelhouse"):
            assert shown["packages"][system][name]["type"] == "derivation", (system, name)
        for name in ("retrain", "default"):
            assert shown["apps"][system][name] == {"type": "app"}, (system, name)
        assert shown["devShells"][system]["default"]["type"] == "derivation"
        assert set(shown["checks"][system]) == {"lock-agreement", "retrain", "registry-audit"}
        for check in shown["checks"][system].values():
            assert check["type"] == "derivation"
    assert shown["packages"]["x86_64-linux"]["retrain"]["name"] == "retrain-0.1.0"


def test_flake_check_evaluates_every_output_of_both_systems(nix: Nix, flake: Path) -> None:
    # --no-build: instantiates every derivation (forcing every lazy value the
    # outputs depend on, the lock agreement among them) and checks app types.
    result = nix("flake", "check", "--no-build", *AGAINST_STUB, f"path:{flake}")
    assert "error" not in result.stderr


def test_package_metadata_matches_pyproject(nix: Nix, flake: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    package = evaluate(
        nix,
        flake,
        "packages.x86_64-linux.retrain",
        "p: { inherit (p) pname version format; inherit (p.meta) description mainProgram; "
        "license = p.meta.license.spdxId; }",
    )
    assert package == {
        "pname": project["name"],
        "version": project["version"],
        "format": "pyproject",
        "description": project["description"],
        "mainProgram": "retrain",
        "license": project["license"]["text"],
    }


def test_default_package_and_app_are_the_retrain_command(nix: Nix, flake: Path) -> None:
    for system in SYSTEMS:
        found = evaluate(
            nix,
            flake,
            f"packages.{system}",
            "ps: { retrain = ps.retrain.outPath; default = ps.default.outPath; }",
        )
        assert found["default"] == found["retrain"]
        program = evaluate(nix, flake, f"apps.{system}.retrain.program")
        assert program == found["retrain"] + "/bin/retrain"


def test_package_depends_on_the_locked_versions_of_pyproject_dependencies(
    nix: Nix, flake: Path
) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {gen.normalize(r) for r in project["dependencies"]}
    deps = evaluate(
        nix,
        flake,
        "packages.x86_64-linux.retrain",
        "p: { deps = map (d: { name = d.pname; value = d.version; }) p.dependencies; "
        'build = map (d: d.pname + "==" + d.version) p.build-system; }',
    )
    versions = locked_versions()
    assert {d["name"]: d["value"] for d in deps["deps"]} == {
        name: versions[name] for name in wanted
    }
    assert deps["build"] == [f"setuptools=={versions['setuptools']}"]


def test_python_package_set_equals_the_lock_files(nix: Nix, flake: Path) -> None:
    generated_deps = _generated_dependencies()
    for system in SYSTEMS:
        packages = evaluate(
            nix,
            flake,
            f"legacyPackages.{system}.pythonPackages",
            "ps: builtins.mapAttrs (n: p: { inherit (p) pname version format; "
            "url = p.src.url; sha256 = p.src.outputHash; "
            "deps = map (d: d.pname) p.dependencies; }) ps",
        )
        assert {name: p["version"] for name, p in packages.items()} == locked_versions(), system
        for name, package in packages.items():
            assert package["pname"] == name
            assert package["format"] == "wheel"
            assert package["url"].endswith(".whl")
            assert sorted(package["deps"]) == generated_deps[name], name
        # Each system gets a wheel built for it (or a pure one).
        assert packages["numpy"]["url"].endswith(f"_{system.split('-')[0]}.whl"), system


def test_dev_shell_has_the_toolchain_and_exactly_the_locked_python(nix: Nix, flake: Path) -> None:
    shell = evaluate(
        nix,
        flake,
        "devShells.x86_64-linux.default",
        "s: let env = builtins.head (builtins.filter (p: p ? extraLibs) s.packages); in "
        "{ packages = map (p: p.name) s.packages; pythonEnv = env.outPath; "
        'python = map (p: p.pname + "==" + p.version) env.extraLibs; '
        "inherit (s) RETRAIN_PYTHON RETRAIN_WHEELHOUSE; }",
    )
    names = shell["packages"]
    assert len(names) == 4
    # bazel_4 when nixpkgs has it: the major version Debian ships (4.2.3).
    for tool in ("bazel-4.", "python3-3.11", "git-", "openssl-"):
        assert [n for n in names if n.startswith(tool)], (tool, names)
    assert sorted(shell["python"]) == sorted(f"{n}=={v}" for n, v in locked_versions().items())
    assert shell["RETRAIN_PYTHON"] == shell["pythonEnv"] + "/bin/python3.11"
    wheelhouse = evaluate(nix, flake, "packages.x86_64-linux.wheelhouse.outPath")
    assert shell["RETRAIN_WHEELHOUSE"] == wheelhouse


def test_wheelhouse_holds_every_locked_wheel_under_its_file_name(nix: Nix, flake: Path) -> None:
    entries = evaluate(
        nix,
        flake,
        "packages.x86_64-linux.wheelhouse",
        "w: { inherit (w) entryNames; }",
    )["entryNames"]
    text = (ROOT / "nix" / "python-packages.nix").read_text()
    assert len(entries) == len(locked_versions())
    for entry in entries:
        assert entry.endswith(".whl") and f'/{entry}";' in text, entry


def test_flake_lock_pins_nixpkgs_by_revision_and_nar_hash(nix: Nix, flake: Path) -> None:
    lock = json.loads((ROOT / "flake.lock").read_text())
    locked = lock["nodes"][lock["nodes"][lock["root"]]["inputs"]["nixpkgs"]]["locked"]
    assert locked["type"] == "github" and (locked["owner"], locked["repo"]) == ("NixOS", "nixpkgs")
    assert len(locked["rev"]) == 40 and int(locked["rev"], 16) >= 0
    assert locked["narHash"].startswith("sha256-") and len(locked["narHash"]) == 51
    # Offline, nix reads the lock without fetching only when it matches
    # flake.nix's inputs; a stale lock would need nixpkgs to re-lock.
    metadata = json.loads(nix("flake", "metadata", "--json", f"path:{flake}").stdout)
    assert metadata["locks"]["nodes"]["nixpkgs"]["locked"] == locked


@pytest.fixture
def drifted(tmp_path: Path) -> tuple[Path, str]:
    """A copy of the flake whose nix/python-packages.nix pins numpy 1.0.0."""
    numpy = locked_versions()["numpy"]
    copy = copy_flake(tmp_path / "drifted")
    generated = copy / "nix" / "python-packages.nix"
    old = f'"numpy" = {{\n    version = "{numpy}";'
    assert generated.read_text().count(old) == 1
    generated.write_text(generated.read_text().replace(old, '"numpy" = {\n    version = "1.0.0";'))
    return copy, numpy


def test_drifted_pin_fails_flake_check_naming_package_and_both_versions(
    nix: Nix, drifted: tuple[Path, str]
) -> None:
    copy, numpy = drifted
    result = nix("flake", "check", "--no-build", *AGAINST_STUB, f"path:{copy}", check=False)
    assert result.returncode != 0
    assert f"package numpy: flake has 1.0.0, requirements/runtime.lock has {numpy}" in result.stderr
    # The Python reading of the same files says the same, word for word.
    problems = gen.disagreements(
        gen.read_generated(copy / "nix" / "python-packages.nix"), gen.read_locks(copy)
    )
    assert f"package numpy: flake has 1.0.0, requirements/runtime.lock has {numpy}" in problems


@pytest.mark.parametrize(
    "attribute",
    [
        "devShells.x86_64-linux.default",
        "packages.aarch64-linux.retrain",
        "apps.x86_64-linux.retrain",
    ],
)
def test_drifted_pin_stops_every_output_not_just_the_check(
    nix: Nix, drifted: tuple[Path, str], attribute: str
) -> None:
    copy, numpy = drifted
    result = nix(
        "eval",
        "--raw",
        *AGAINST_STUB,
        f"path:{copy}#{attribute}",
        "--apply",
        "x: builtins.toJSON x",
        check=False,
    )
    assert result.returncode != 0
    assert f"package numpy: flake has 1.0.0, requirements/dev.lock has {numpy}" in result.stderr


def test_dependency_that_no_lock_pins_fails_naming_it(nix: Nix, tmp_path: Path) -> None:
    copy = copy_flake(tmp_path / "unlocked")
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"click",', '"click",\n    "Left_Pad>=1",'))
    result = nix(
        "eval",
        "--raw",
        *AGAINST_STUB,
        f"path:{copy}#packages.x86_64-linux.retrain.drvPath",
        check=False,
    )
    assert result.returncode != 0
    assert (
        "pyproject.toml depends on left-pad, which no file in requirements/ locks" in result.stderr
    )


def _generated_dependencies() -> dict[str, list[str]]:
    text = (ROOT / "nix" / "python-packages.nix").read_text()
    entries = re.findall(
        r'^  "([^"]+)" = \{\n    version = "[^"]+";\n    dependencies = \[ ([^\]]*)\];', text, re.M
    )
    assert len(entries) == len(locked_versions())
    return {name: sorted(d.strip('"') for d in deps.split()) for name, deps in entries}


def test_package_source_is_only_what_the_package_needs(nix: Nix, tmp_path: Path) -> None:
    # Editing tests or docs must not rebuild the package; caches never enter it.
    copy = copy_flake(tmp_path / "source")
    (copy / "retrain" / "__pycache__").mkdir()
    (copy / "retrain" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"stale")
    (copy / "notes.md").write_text("not part of the package")
    src = evaluate(nix, copy, "packages.x86_64-linux.retrain.src")
    tree = nix.store / src.lstrip("/")  # type: ignore[attr-defined]
    files = {str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file()}
    expected = {"pyproject.toml", "README.md"} | {
        str(p.relative_to(ROOT))
        for p in (ROOT / "retrain").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert files == expected
