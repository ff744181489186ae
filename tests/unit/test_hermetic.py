"""The action environment contract, and that the Starlark rules state the same one."""

from __future__ import annotations

import ast

import pytest

from retrain.errors import HermeticityError
from retrain.hermetic import (
    ACTION_ENV,
    check_action_environment,
    expected_blas_coretype,
)
from tests.unit.support import REPO

MACHINE = "x86_64"


def _contract() -> dict[str, str]:
    return {
        **ACTION_ENV,
        "PYTHONPATH": "bazel-out/k8-fastbuild/bin/retrain_src",
        "OPENBLAS_CORETYPE": expected_blas_coretype(MACHINE),
    }


def _refused(environ: dict[str, str], *, no_site: bool = True) -> str:
    with pytest.raises(HermeticityError) as info:
        check_action_environment(environ, no_site=no_site, machine=MACHINE)
    assert info.value.exit_code == 2
    return info.value.diagnostics()


def test_check_action_environment_accepts_exactly_the_contract() -> None:
    check_action_environment(_contract(), no_site=True, machine=MACHINE)


def test_check_action_environment_accepts_the_contract_for_this_machine() -> None:
    env = {**ACTION_ENV, "PYTHONPATH": "src"}
    if expected_blas_coretype():
        env["OPENBLAS_CORETYPE"] = expected_blas_coretype()

    check_action_environment(env, no_site=True)


def test_check_action_environment_accepts_variables_bazel_itself_sets() -> None:
    check_action_environment(
        {**_contract(), "TMPDIR": "/tmp/sandbox"}, no_site=True, machine=MACHINE
    )


def test_check_action_environment_refuses_a_changed_value_naming_the_variable() -> None:
    line = _refused({**_contract(), "TZ": "Europe/Paris"})

    assert line == "action environment variable TZ: expected 'UTC', found 'Europe/Paris'"


def test_check_action_environment_refuses_a_missing_variable_naming_it() -> None:
    env = _contract()
    del env["PYTHONHASHSEED"]

    assert _refused(env) == "action environment variable PYTHONHASHSEED: expected '0', found None"


def test_check_action_environment_refuses_another_blas_coretype() -> None:
    line = _refused({**_contract(), "OPENBLAS_CORETYPE": "SkylakeX"})

    assert (
        line
        == "action environment variable OPENBLAS_CORETYPE: expected 'Prescott', found 'SkylakeX'"
    )


def test_check_action_environment_refuses_missing_blas_coretype() -> None:
    env = _contract()
    del env["OPENBLAS_CORETYPE"]

    assert "OPENBLAS_CORETYPE" in _refused(env)


def test_check_action_environment_refuses_an_inherited_variable_naming_it() -> None:
    line = _refused({**_contract(), "HOME": "/home/someone"})

    assert line.startswith("action environment has inherited variable HOME")


def test_check_action_environment_refuses_python_with_site_enabled() -> None:
    line = _refused(_contract(), no_site=False)

    assert line == (
        "action Python was started with site-packages of the host: "
        "expected python -S, found site enabled"
    )


@pytest.mark.parametrize(
    "machine, coretype",
    [("x86_64", "Prescott"), ("AMD64", "Prescott"), ("aarch64", "ARMV8"), ("arm64", "ARMV8")],
)
def test_expected_blas_coretype_is_one_baseline_per_architecture(
    machine: str, coretype: str
) -> None:
    assert expected_blas_coretype(machine) == coretype


def test_starlark_action_env_equals_python_action_env() -> None:
    text = (REPO / "rules" / "private" / "hermetic.bzl").read_text()
    start = text.index("ACTION_ENV = ") + len("ACTION_ENV = ")
    end = text.index("}", start) + 1

    assert ast.literal_eval(text[start:end]) == dict(ACTION_ENV)
