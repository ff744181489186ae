"""Test support for the Nix flake: nix/generate_python_packages.py as a module.

The generator is a script in nix/, not part of the retrain package; its lock
and generated-file readers are what the tests compare the flake against.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "nix" / "generate_python_packages.py"
NIXPKGS_STUB = Path(__file__).resolve().parent / "nixpkgs-stub"


def load_generator() -> ModuleType:
    name = "retrain_nix_generate_python_packages"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
