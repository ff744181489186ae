"""Run the pinned buildifier (Starlark formatter and linter) on the project's Starlark files.

Usage: python scripts/buildifier.py [--fix]

The binary comes from the npm registry's ``@bazel/buildifier`` tarball, pinned
below by version, the tarball's sha512 (npm's ``dist.integrity``) and the
binary's own sha256. It is fetched once into ``$RETRAIN_CACHE/tools`` (no npm
needed: the tarball is a plain download), checked, and run from there; later
runs are offline. Without ``--fix`` it checks formatting and lint warnings and
exits 1 on any (as ``ruff format --check`` does); with ``--fix`` it rewrites.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

VERSION = "8.2.1"
TARBALL = f"https://registry.npmjs.org/@bazel/buildifier/-/buildifier-{VERSION}.tgz"
TARBALL_SHA512 = (
    "eZ/Aq+2r4PcJa6LbPCT6ffgIJfTU/gYilqIzoX2OLM4nNkbQC6tTMPZNn7aHHjhGPxbNLv41zm4Xqt1olCLgXw=="
)
BINARY_SHA256 = {
    "linux_amd64": "6ceb7b0ab7cf66fceccc56a027d21d9cc557a7f34af37d2101edb56b92fcfa1a",
    "linux_arm64": "3baa1cf7eb41d51f462fdd1fff3a6a4d81d757275d05b2dd5f48671284e9a1a5",
    "linux_riscv64": "5101795c6b90e3aca6d8dc4efe15fd818a8b6053f34284551f6ba7fa57ad8415",
}
ROOT = Path(__file__).resolve().parents[1]
# Ours only: third_party/ holds Bazel's own rule stubs, kept as shipped.
SKIP = ("third_party", "bazel-", ".venv", ".git")
NAMES = ("BUILD", "BUILD.bazel", "WORKSPACE", "WORKSPACE.bazel")


def fail(message: str) -> None:
    print(f"buildifier: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def platform_name() -> str:
    machine = {"x86_64": "amd64", "aarch64": "arm64", "riscv64": "riscv64"}.get(platform.machine())
    name = f"{sys.platform}_{machine}"
    if machine is None or name not in BINARY_SHA256:
        fail(f"no pinned buildifier for {sys.platform} {platform.machine()}")
    return name


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def binary() -> Path:
    """The checked binary in the cache, fetched and verified first if it is not there."""
    name = platform_name()
    cache = Path(
        os.environ.get("RETRAIN_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "retrain"
    )
    target = cache / "tools" / f"buildifier-{VERSION}-{name}"
    cached = target.is_file() and not target.is_symlink()
    if cached and sha256(target.read_bytes()) == BINARY_SHA256[name]:
        return target
    try:
        with urllib.request.urlopen(TARBALL, timeout=60) as response:
            tarball = response.read(64 << 20)
    except OSError as exc:
        fail(f"cannot download {TARBALL} (network to the npm registry needed once): {exc}")
    found = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if found != TARBALL_SHA512:
        fail(f"{TARBALL}: expected sha512-{TARBALL_SHA512}, found sha512-{found}")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        member = tar.extractfile(f"package/buildifier-{name}")
        if member is None:
            fail(f"{TARBALL} holds no package/buildifier-{name}")
        data = member.read()
    if sha256(data) != BINARY_SHA256[name]:
        fail(f"buildifier-{name}: expected sha256 {BINARY_SHA256[name]}, found {sha256(data)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o755)
    os.replace(tmp.name, target)
    return target


def starlark_files() -> list[str]:
    out = []
    for directory, subdirs, files in os.walk(ROOT):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(SKIP))
        rel = Path(directory).relative_to(ROOT)
        out += [str(rel / f) for f in files if f in NAMES or f.endswith(".bzl")]
    return sorted(out)


def main(argv: list[str]) -> int:
    fix = argv == ["--fix"]
    if argv and not fix:
        fail(f"unknown arguments {argv}: expected nothing or --fix")
    mode = ["--mode=fix", "--lint=fix"] if fix else ["--mode=check", "--lint=warn"]
    return subprocess.run(
        [str(binary()), *mode, *starlark_files()], cwd=ROOT, check=False
    ).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
