"""Write nix/python-packages.nix from the lock files in requirements/.

The locks are the one source of truth for Python versions; the flake reads
this generated list. For every locked distribution it records the version,
the locked distributions that depend-on edges point to (read from the lock's
``# via`` annotations), and, per Nix system, the one wheel that pip picks for
CPython 3.11 on that system: its URL and its sha256, which must be one of the
lock's hashes for that distribution. On x86_64 the wheel must also be the one
scripts/setup.sh puts in the wheelhouse, so that both paths install the same
bytes.

pip resolves the file names (``pip install --dry-run --report``), so this
needs PyPI. Run it after every lock change:

    .venv/bin/python nix/generate_python_packages.py

``--check`` needs no network: it compares the generated file's names and
versions with the locks and prints one line per disagreement (exit 1).
tests/unit/test_nix_packages.py, tests/integration/test_flake.py and the
flake itself (nix/locks.nix, at evaluation time) fail the same way.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ("runtime", "sign", "dev")
OUT = ROOT / "nix" / "python-packages.nix"
# Nix system -> the CPU name in wheel platform tags.
ARCHES = {"x86_64-linux": "x86_64", "aarch64-linux": "aarch64"}
# The glibc ceiling is Debian 12's (2.36), the reference machine: pip then
# picks the same wheels as scripts/setup.sh does there, not newer builds that
# only a newer glibc could load.
GLIBC_MINOR = 36
_PIN = re.compile(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\$")
_HASH = re.compile(r"^\s+--hash=sha256:([0-9a-f]{64})")
_VIA_ONE = re.compile(r"^\s+# via (\S.*)$")
_VIA_MORE = re.compile(r"^\s+#   (\S.*)$")


@dataclass
class LockedDist:
    name: str
    version: str
    hashes: set[str] = field(default_factory=set)
    # Locked distributions that require this one.
    required_by: set[str] = field(default_factory=set)


def normalize(requirement: str) -> str:
    """The PEP 503 name of a requirement: "securesystemslib[crypto]" -> "securesystemslib"."""
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    if name is None:
        raise LockFileError(f"cannot read a distribution name from {requirement!r}")
    return re.sub(r"[-_.]+", "-", name[0]).lower()


class LockFileError(Exception):
    """A lock file, or the generated file, is not in the form this script reads."""


def parse_lock(path: Path) -> dict[str, LockedDist]:
    """Every pin of a uv-compiled, hash-locked requirements file.

    A line this does not understand is refused rather than skipped: a pin
    read wrongly here would let the flake and the lock disagree unnoticed.
    """
    dists: dict[str, LockedDist] = {}
    current: LockedDist | None = None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if m := _PIN.match(line):
            if m[1] in dists:
                raise LockFileError(f"{path.name} line {number}: {m[1]} is pinned twice")
            current = dists[m[1]] = LockedDist(m[1], m[2])
        elif current is not None and (m := _HASH.match(line)):
            current.hashes.add(m[1])
        elif current is not None and (m := _VIA_ONE.match(line) or _VIA_MORE.match(line)):
            via = m[1].strip()
            # "-r dev.in" and "-c runtime.lock" are requirement files, not dists.
            if not via.startswith("-"):
                current.required_by.add(via)
        elif line.strip() and not line.lstrip().startswith("#"):
            raise LockFileError(
                f"{path.name} line {number}: expected a `name==version \\` pin, a hash or a comment, found {line.strip()!r}"
            )
    return dists


def read_locks(root: Path = ROOT) -> dict[str, dict[str, LockedDist]]:
    """Each lock file's pins, keyed by its path relative to the repository."""
    return {
        f"requirements/{lock}.lock": parse_lock(root / "requirements" / f"{lock}.lock")
        for lock in LOCKS
    }


_GENERATED_ENTRY = re.compile(r'^  "([a-z0-9][a-z0-9._-]*)" = \{\n    version = "([^"]+)";', re.M)


def read_generated(path: Path = OUT) -> dict[str, str]:
    """Name -> version of every distribution in a generated python-packages.nix."""
    text = path.read_text()
    entries = _GENERATED_ENTRY.findall(text)
    if len(entries) != text.count("    wheels = {"):
        raise LockFileError(
            f"{path.name}: not in the form generate_python_packages.py writes; regenerate it"
        )
    return dict(entries)


def disagreements(generated: dict[str, str], locks: dict[str, dict[str, LockedDist]]) -> list[str]:
    """One line per package whose version the generated file and a lock disagree on.

    The same lines, word for word, as nix/locks.nix produces at evaluation time.
    """
    problems = []
    for lock_name, pins in sorted(locks.items()):
        for name, dist in sorted(pins.items()):
            have = generated.get(name, "no such package")
            if have != dist.version:
                problems.append(f"package {name}: flake has {have}, {lock_name} has {dist.version}")
    pinned = {name for pins in locks.values() for name in pins}
    for name in sorted(set(generated) - pinned):
        problems.append(f"package {name}: flake has {generated[name]}, no lock file pins it")
    return problems


def merged_locks() -> dict[str, LockedDist]:
    merged: dict[str, LockedDist] = {}
    for lock, pins in read_locks().items():
        for name, dist in pins.items():
            seen = merged.setdefault(name, LockedDist(name, dist.version))
            if seen.version != dist.version:
                raise LockFileError(
                    f"package {name}: {lock} has {dist.version}, another lock {seen.version}"
                )
            seen.hashes |= dist.hashes
            seen.required_by |= dist.required_by
    return merged


def platform_tags(arch: str) -> list[str]:
    """Every manylinux tag a glibc 2.36 machine accepts, most specific first (as pip orders them).

    pip does not widen a --platform given on the command line, so each one is listed.
    """
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    for minor, alias in legacy.items():
        tags.insert(tags.index(f"manylinux_2_{minor}_{arch}") + 1, f"{alias}_{arch}")
    return tags


def chosen_wheels(arch: str, requirements: Path) -> dict[str, dict[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--dry-run",
                # pip allows --platform only with --target; nothing is installed.
                f"--target={Path(tmp) / 'target'}",
                "--no-deps",
                "--require-hashes",
                "--only-binary=:all:",
                "--implementation=cp",
                "--python-version=3.11",
                "--abi=cp311",
                *(f"--platform={tag}" for tag in platform_tags(arch)),
                f"--report={report}",
                "-r",
                str(requirements),
            ],
            check=True,
            # PyPI itself, not a local mirror: the URLs end up in the flake.
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("PIP_")},
                "PIP_CONFIG_FILE": os.devnull,
            },
        )
        installs = json.loads(report.read_text())["install"]
    wheels = {}
    for item in installs:
        name = normalize(item["metadata"]["name"])
        info = item["download_info"]
        wheels[name] = {"url": info["url"], "sha256": info["archive_info"]["hashes"]["sha256"]}
    return wheels


def wheelhouse_hashes() -> set[str]:
    import hashlib

    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    house = Path(os.environ.get("RETRAIN_WHEELHOUSE") or Path(cache) / "retrain" / "wheelhouse")
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in house.glob("*.whl")}


def render(dists: dict[str, LockedDist], wheels: dict[str, dict[str, dict[str, str]]]) -> str:
    lines = [
        "# Generated by nix/generate_python_packages.py from requirements/*.lock; do",
        "# not edit. Change a lock, then run the script. For each locked distribution:",
        "# its version, the locked distributions it depends on, and per Nix system the",
        "# wheel pip picks for CPython 3.11 there (sha256: one of the lock's hashes).",
        "# tests/integration/test_flake.py and `nix flake check` fail when this file",
        "# and the locks disagree.",
        "{",
    ]
    depends_on: dict[str, set[str]] = {name: set() for name in dists}
    for name, dist in dists.items():
        for user in dist.required_by:
            depends_on[user].add(name)
    for name in sorted(dists):
        per_system = {system: wheels[system][name] for system in sorted(wheels)}
        distinct = {w["sha256"] for w in per_system.values()}
        if len(distinct) == 1 and per_system[next(iter(per_system))]["url"].endswith("-any.whl"):
            per_system = {"any": next(iter(per_system.values()))}
        deps = " ".join(f'"{d}"' for d in sorted(depends_on[name]))
        lines += [
            f'  "{name}" = {{',
            f'    version = "{dists[name].version}";',
            f"    dependencies = [ {deps} ];" if deps else "    dependencies = [ ];",
            "    wheels = {",
        ]
        for system, wheel in per_system.items():
            lines += [
                f'      "{system}" = {{',
                f'        url = "{wheel["url"]}";',
                f'        sha256 = "{wheel["sha256"]}";',
                "      };",
            ]
        lines += ["    };", "  };"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def check() -> None:
    problems = disagreements(read_generated(), read_locks())
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"{OUT.relative_to(ROOT)} agrees with the lock files")


def generate() -> None:
    dists = merged_locks()
    unknown = {u for d in dists.values() for u in d.required_by} - set(dists)
    if unknown:
        sys.exit(f"lock annotations name distributions that are not locked: {sorted(unknown)}")
    with tempfile.TemporaryDirectory() as tmp:
        everything = Path(tmp) / "all.txt"
        everything.write_text(
            "".join(
                f"{d.name}=={d.version} "
                + " ".join(f"--hash=sha256:{h}" for h in sorted(d.hashes))
                + "\n"
                for d in dists.values()
            )
        )
        wheels = {system: chosen_wheels(arch, everything) for system, arch in ARCHES.items()}
    house = wheelhouse_hashes()
    for system, chosen in wheels.items():
        for name, dist in dists.items():
            if name not in chosen:
                sys.exit(f"package {name}: pip chose no wheel for {system}")
            if chosen[name]["sha256"] not in dist.hashes:
                sys.exit(
                    f"package {name}: the {system} wheel's sha256 is not among the lock's hashes"
                )
            if system == "x86_64-linux" and house and chosen[name]["sha256"] not in house:
                sys.exit(f"package {name}: the x86_64-linux wheel is not the one in the wheelhouse")
    OUT.write_text(render(dists, wheels))
    print(f"wrote {OUT.relative_to(ROOT)}: {len(dists)} distributions")


def main() -> None:
    try:
        if sys.argv[1:] == ["--check"]:
            check()
        elif not sys.argv[1:]:
            generate()
        else:
            sys.exit("usage: generate_python_packages.py [--check]")
    except (LockFileError, OSError) as error:
        sys.exit(f"generate_python_packages: {error}")


if __name__ == "__main__":
    main()
