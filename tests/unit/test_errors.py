"""The one error family: one line saying where, what, expected and found."""

from __future__ import annotations

import pytest

from retrain.errors import (
    CheckFailed,
    DataError,
    DigestMismatch,
    HermeticityError,
    InputError,
    ManifestError,
    PathEscapeError,
    RecipeError,
    RetrainError,
    SchemaMismatch,
    StoreError,
)


def test_diagnostics_says_where_what_expected_found_and_hint() -> None:
    error = RetrainError(
        "sha256 mismatch", where="a.parquet", expected="abc", found="def", hint="re-fetch"
    )

    assert error.diagnostics() == "a.parquet: sha256 mismatch: expected abc, found def (re-fetch)"


def test_diagnostics_is_one_line_even_for_multi_line_parts() -> None:
    error = RetrainError("bad\nthing", where="x", found="line one\n  line two")

    assert error.diagnostics() == "x: bad thing: found line one line two"


def test_diagnostics_leaves_out_expected_when_only_found_is_known() -> None:
    assert (
        RetrainError("rows must be positive", found=0).diagnostics()
        == "rows must be positive: found 0"
    )


def test_diagnostics_leaves_out_found_when_only_expected_is_known() -> None:
    assert RetrainError("empty", expected="one row").diagnostics() == "empty: expected one row"


def test_str_of_an_error_is_its_diagnostics() -> None:
    error = InputError("missing", where="m.json")

    assert str(error) == error.diagnostics() == "m.json: missing"


@pytest.mark.parametrize(
    "cls",
    [
        InputError,
        ManifestError,
        PathEscapeError,
        RecipeError,
        DataError,
        StoreError,
        HermeticityError,
    ],
)
def test_unusable_input_exits_2(cls: type[RetrainError]) -> None:
    assert issubclass(cls, InputError)
    assert cls("x").exit_code == 2


@pytest.mark.parametrize("cls", [CheckFailed, DigestMismatch, SchemaMismatch])
def test_failed_check_exits_1(cls: type[RetrainError]) -> None:
    assert issubclass(cls, CheckFailed)
    assert cls("x").exit_code == 1
