"""The environment contract of build actions, checked from the inside.

The Bazel rules (rules/private/hermetic.bzl) start every action with exactly
``ACTION_ENV`` plus PYTHONPATH and OPENBLAS_CORETYPE, and Python with ``-S
-B``. ``enter_action`` checks that this is so before anything else runs and
refuses otherwise: an action started by hand, or by a rule that forgot the
contract, fails instead of producing bytes that depend on the caller.

It then pins what can be pinned only from inside the process: one thread for
every BLAS/OpenMP pool (threadpoolctl), UTC, a fixed umask.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from retrain.errors import HermeticityError

__all__ = [
    "ACTION_ENV",
    "ALLOWED_EXTRA_ENV",
    "BLAS_CORETYPES",
    "blas_report",
    "check_action_environment",
    "enter_action",
    "expected_blas_coretype",
    "pin_threads",
]

ACTION_ENV: Mapping[str, str] = MappingProxyType(
    {
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONSAFEPATH": "1",
        "PYTHONUTF8": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "BLIS_NUM_THREADS": "1",
        "VECLIB_MAXIMUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "SOURCE_DATE_EPOCH": "315532800",
    }
)
# Set per action by the rules (PYTHONPATH, OPENBLAS_CORETYPE) or by Bazel
# itself (TMPDIR), or by the kernel/shell (PWD); none of them reaches outputs.
ALLOWED_EXTRA_ENV = frozenset({"PYTHONPATH", "OPENBLAS_CORETYPE", "TMPDIR", "PWD", "SHLVL", "_"})
# One baseline kernel set that every CPU of the architecture runs, so BLAS
# results do not depend on which CPU the build ran on.
BLAS_CORETYPES: Mapping[str, str] = MappingProxyType(
    {"x86_64": "Prescott", "amd64": "Prescott", "aarch64": "ARMV8", "arm64": "ARMV8"}
)


def expected_blas_coretype(machine: str | None = None) -> str:
    return BLAS_CORETYPES.get((machine or platform.machine()).lower(), "")


def check_action_environment(
    environ: Mapping[str, str], *, no_site: bool, machine: str | None = None
) -> None:
    """Raise HermeticityError naming the first variable that breaks the contract."""
    for key, value in sorted(ACTION_ENV.items()):
        if environ.get(key) != value:
            raise HermeticityError(
                f"action environment variable {key}",
                expected=repr(value),
                found=repr(environ.get(key)),
            )
    coretype = expected_blas_coretype(machine)
    if environ.get("OPENBLAS_CORETYPE", "") != coretype:
        raise HermeticityError(
            "action environment variable OPENBLAS_CORETYPE",
            expected=repr(coretype),
            found=repr(environ.get("OPENBLAS_CORETYPE")),
        )
    extra = sorted(set(environ) - set(ACTION_ENV) - ALLOWED_EXTRA_ENV)
    if extra:
        raise HermeticityError(
            f"action environment has inherited variable {extra[0]}",
            expected="only the variables of the contract",
            hint="actions must not use the default shell environment",
        )
    if not no_site:
        raise HermeticityError(
            "action Python was started with site-packages of the host",
            expected="python -S",
            found="site enabled",
        )


def enter_action() -> None:
    """Check the contract, then pin threads, clock zone and umask for this process."""
    check_action_environment(os.environ, no_site=bool(sys.flags.no_site))
    os.umask(0o022)
    time.tzset()


def pin_threads() -> None:
    """Load the numeric libraries and cap every BLAS/OpenMP pool at one thread.

    The environment variables already ask for one thread; this also covers
    libraries that ignore them. threadpoolctl only sees loaded libraries, so
    they are imported first.
    """
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def blas_report() -> list[dict[str, Any]]:
    """What threadpoolctl reports about loaded BLAS/OpenMP libraries, without paths."""
    pin_threads()
    from threadpoolctl import threadpool_info

    keep = (
        "user_api",
        "internal_api",
        "prefix",
        "version",
        "threading_layer",
        "architecture",
        "num_threads",
    )
    rows = [{k: info.get(k) for k in keep if k in info} for info in threadpool_info()]
    return sorted(
        rows, key=lambda r: (str(r.get("user_api")), str(r.get("prefix")), str(r.get("version")))
    )
