"""nix/python-packages.nix against the lock files, read in Python (no Nix needed).

The flake takes its Python package set from that generated file; the locks in
requirements/ are the one source of truth. These tests fail, naming the
package and both versions, when the two disagree.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.nix import ROOT, load_generator

gen = load_generator()
GENERATED = ROOT / "nix" / "python-packages.nix"


def _copy_generated(tmp_path: Path, old: str, new: str) -> Path:
    text = GENERATED.read_text()
    assert text.count(old) == 1, f"fixture edit {old!r} is not unique in {GENERATED.name}"
    copy = tmp_path / "python-packages.nix"
    copy.write_text(text.replace(old, new))
    return copy


def test_generated_python_packages_agree_with_every_lock() -> None:
    problems = gen.disagreements(gen.read_generated(GENERATED), gen.read_locks(ROOT))
    assert not problems, "\n".join(problems)


def test_every_lock_pin_is_in_the_generated_file() -> None:
    # Guards the reader itself: an empty parse would "agree" with anything.
    generated = gen.read_generated(GENERATED)
    locks = gen.read_locks(ROOT)
    assert set(locks) == {f"requirements/{name}.lock" for name in ("runtime", "sign", "dev")}
    pinned = {name for pins in locks.values() for name in pins}
    assert len(pinned) >= 60
    assert set(generated) == pinned


def test_drifted_version_names_the_package_and_both_versions(tmp_path: Path) -> None:
    runtime = gen.read_locks(ROOT)["requirements/runtime.lock"]
    numpy = runtime["numpy"].version
    drifted = _copy_generated(
        tmp_path, f'"numpy" = {{\n    version = "{numpy}";', '"numpy" = {\n    version = "1.0.0";'
    )
    problems = gen.disagreements(gen.read_generated(drifted), gen.read_locks(ROOT))
    assert f"package numpy: flake has 1.0.0, requirements/runtime.lock has {numpy}" in problems
    assert f"package numpy: flake has 1.0.0, requirements/dev.lock has {numpy}" in problems
    assert all(line.startswith("package numpy: ") for line in problems)


def test_package_missing_from_the_generated_file_is_named(tmp_path: Path) -> None:
    text = GENERATED.read_text()
    start = text.index('  "click" = {')
    end = text.index('\n  "', start + 1) + 1
    copy = tmp_path / "python-packages.nix"
    copy.write_text(text[:start] + text[end:])
    problems = gen.disagreements(gen.read_generated(copy), gen.read_locks(ROOT))
    click = gen.read_locks(ROOT)["requirements/runtime.lock"]["click"].version
    assert (
        f"package click: flake has no such package, requirements/runtime.lock has {click}"
        in problems
    )


def test_package_no_lock_pins_is_named(tmp_path: Path) -> None:
    extra = '  "left-pad" = {\n    version = "1.3.0";\n    dependencies = [ ];\n    wheels = {\n    };\n  };\n}\n'
    copy = tmp_path / "python-packages.nix"
    copy.write_text(GENERATED.read_text().rstrip().removesuffix("}") + extra)
    problems = gen.disagreements(gen.read_generated(copy), gen.read_locks(ROOT))
    assert problems == ["package left-pad: flake has 1.3.0, no lock file pins it"]


def test_every_wheel_hash_is_one_of_the_locks_hashes() -> None:
    # The flake fetches wheels by these hashes; each must be a file the lock allows.
    hashes: dict[str, set[str]] = {}
    for pins in gen.read_locks(ROOT).values():
        for name, dist in pins.items():
            hashes.setdefault(name, set()).update(dist.hashes)
    blocks = re.split(r'^  "', GENERATED.read_text(), flags=re.M)[1:]
    assert len(blocks) == len(hashes)
    for block in blocks:
        name = block.split('"', 1)[0]
        wheel_hashes = re.findall(r'sha256 = "([0-9a-f]{64})";', block)
        assert wheel_hashes, f"package {name}: no wheel in {GENERATED.name}"
        for sha256 in wheel_hashes:
            assert sha256 in hashes[name], (
                f"package {name}: wheel sha256 {sha256} is not among the lock's hashes"
            )


def test_lock_line_that_is_not_a_pin_is_refused_with_its_line_number(tmp_path: Path) -> None:
    lock = tmp_path / "runtime.lock"
    shutil.copy(ROOT / "requirements" / "runtime.lock", lock)
    lock.write_text(lock.read_text() + "numpy>=2 \\\n")
    with pytest.raises(
        gen.LockFileError, match=r"runtime\.lock line \d+: expected a `name==version"
    ):
        gen.parse_lock(lock)


def test_generated_file_in_another_form_is_refused(tmp_path: Path) -> None:
    copy = _copy_generated(tmp_path, '  "numpy" = {\n', "  numpy = {\n")
    with pytest.raises(
        gen.LockFileError, match=r"not in the form generate_python_packages\.py writes"
    ):
        gen.read_generated(copy)
