"""A seeded generator of credit-risk-like tabular data.

It stands in for production data: numeric and categorical features, missing
values, a binary label with non-linear structure, and a ``drift`` knob that
moves both the feature distributions (covariate shift) and the label's
relationship to them (concept drift). Output is Parquet, and the bytes are a
pure function of (rows, seed, drift, id_offset, files) for a given pyarrow
version, so a manifest can pin them.

Rows are generated in fixed blocks, each from its own seeded stream, so the
rows do not depend on how they are split into files and a billion rows stream
in bounded memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from retrain.errors import InputError

__all__ = [
    "GENERATOR_VERSION",
    "LABEL",
    "SCHEMA",
    "GeneratorSpec",
    "generate_block",
    "generate_table",
    "read_origin",
    "write_dataset",
]

GENERATOR_VERSION = 1
BLOCK_ROWS = 1 << 16
LABEL = "default_90d"

REGIONS = ("north", "south", "east", "west", "central", "coastal")
EMPLOYMENT = ("salaried", "self_employed", "contract", "unemployed", "retired")
PRODUCTS = ("card", "personal_loan", "auto_loan", "mortgage")
CHANNELS = ("web", "branch", "partner")

SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.int64(), nullable=False),
        pa.field("age", pa.int64(), nullable=False),
        pa.field("income", pa.float64(), nullable=True),
        pa.field("debt_ratio", pa.float64(), nullable=False),
        pa.field("credit_lines", pa.int64(), nullable=False),
        pa.field("utilization", pa.float64(), nullable=True),
        pa.field("tenure_months", pa.int64(), nullable=True),
        pa.field("late_payments_12m", pa.int64(), nullable=False),
        pa.field("region", pa.string(), nullable=True),
        pa.field("employment", pa.string(), nullable=False),
        pa.field("product", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field(LABEL, pa.int64(), nullable=False),
    ]
)


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything that determines the generated rows."""

    rows: int
    seed: int
    drift: float = 0.0
    id_offset: int = 0

    def __post_init__(self) -> None:
        for name in ("rows", "seed", "id_offset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"{name} must be an integer", found=repr(value))
        if isinstance(self.drift, bool) or not isinstance(self.drift, (int, float)):
            raise InputError("drift must be a number", found=repr(self.drift))
        if self.rows <= 0:
            raise InputError("rows must be positive", found=self.rows)
        if not 0 <= self.seed < 2**63:
            raise InputError("seed must be in [0, 2**63)", found=self.seed)
        if not (-5.0 <= self.drift <= 5.0) or self.drift != self.drift:
            raise InputError("drift must be a number in [-5, 5]", found=self.drift)
        if self.id_offset < 0:
            raise InputError("id_offset must be non-negative", found=self.id_offset)

    def to_dict(self) -> dict[str, object]:
        return {
            "generator": "retrain.datagen",
            "generator_version": GENERATOR_VERSION,
            "rows": self.rows,
            "seed": self.seed,
            "drift": self.drift,
            "id_offset": self.id_offset,
        }


def _choice(rng: np.random.Generator, values: tuple[str, ...], p: np.ndarray, n: int) -> np.ndarray:
    p = np.clip(p, 1e-6, None)
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=p / p.sum())]


def generate_block(spec: GeneratorSpec, block: int) -> pa.Table:
    """Rows [block * BLOCK_ROWS, ...) of the dataset, as an Arrow table."""
    start = block * BLOCK_ROWS
    n = min(BLOCK_ROWS, spec.rows - start)
    if n <= 0:
        raise InputError(
            "block out of range", expected=f"< {spec.rows // BLOCK_ROWS + 1}", found=block
        )
    rng = np.random.default_rng([spec.seed, GENERATOR_VERSION, block])
    d = spec.drift

    customer_id = np.arange(start, start + n, dtype=np.int64) + spec.id_offset
    age = np.clip(np.rint(rng.normal(44.0 - 2.0 * d, 13.0, n)), 18, 90).astype(np.int64)
    income = np.exp(rng.normal(10.85 - 0.08 * d, 0.55, n))
    debt_ratio = np.clip(rng.beta(2.0, 5.0, n) + 0.04 * d, 0.0, 1.5)
    credit_lines = rng.poisson(4.0 + 0.3 * d, n).astype(np.int64)
    utilization = np.clip(rng.beta(2.0 + 0.6 * d, 3.0, n), 0.0, 1.0)
    tenure = rng.gamma(2.0, 24.0, n)
    late = rng.poisson(np.clip(0.25 + 0.15 * d + 0.8 * utilization**3, 0.01, None), n).astype(
        np.int64
    )

    region = _choice(
        rng, REGIONS, np.array([0.2, 0.18, 0.17, 0.15, 0.2 - 0.03 * d, 0.1 + 0.03 * d]), n
    )
    employment = _choice(
        rng,
        EMPLOYMENT,
        np.array([0.55 - 0.05 * d, 0.15, 0.12 + 0.03 * d, 0.06 + 0.02 * d, 0.12]),
        n,
    )
    product = _choice(rng, PRODUCTS, np.array([0.45, 0.25, 0.18, 0.12]), n)
    channel = _choice(rng, CHANNELS, np.array([0.5, 0.3 - 0.05 * d, 0.2 + 0.05 * d]), n)

    emp_effect = np.select(
        [
            employment == "unemployed",
            employment == "contract",
            employment == "self_employed",
            employment == "retired",
        ],
        [1.1, 0.35, 0.2, -0.15],
        0.0,
    )
    region_effect = np.select([region == "coastal", region == "north"], [0.25, -0.15], 0.0)
    product_effect = np.select([product == "card", product == "mortgage"], [0.3, -0.45], 0.0)
    channel_effect = np.where(channel == "partner", 0.3 + 0.2 * d, 0.0)
    logit = (
        -3.1
        + 2.2 * utilization**2
        + 1.8 * debt_ratio
        + 0.45 * np.minimum(late, 4)
        + 0.6 * utilization * (late > 0)
        - 0.55 * (np.log(income) - 10.85)
        + 0.012 * (age - 45.0) ** 2 / 10.0
        - 0.004 * np.minimum(tenure, 240)
        + 0.05 * np.abs(credit_lines - 4)
        + emp_effect
        + region_effect
        + product_effect
        + channel_effect
        + 0.35 * d * (debt_ratio - 0.3)
    )
    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    income_missing = rng.random(n) < 0.05
    util_missing = rng.random(n) < 0.08
    tenure_missing = rng.random(n) < 0.03
    region_missing = rng.random(n) < 0.02

    def masked(values: np.ndarray, mask: np.ndarray, typ: pa.DataType) -> pa.Array:
        return pa.array(values, type=typ, mask=mask)

    columns = [
        pa.array(customer_id, type=pa.int64()),
        pa.array(age, type=pa.int64()),
        masked(np.round(income, 2), income_missing, pa.float64()),
        pa.array(np.round(debt_ratio, 4), type=pa.float64()),
        pa.array(credit_lines, type=pa.int64()),
        masked(np.round(utilization, 4), util_missing, pa.float64()),
        masked(np.rint(tenure).astype(np.int64), tenure_missing, pa.int64()),
        pa.array(late, type=pa.int64()),
        masked(region, region_missing, pa.string()),
        pa.array(employment, type=pa.string()),
        pa.array(product, type=pa.string()),
        pa.array(channel, type=pa.string()),
        pa.array(label, type=pa.int64()),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def _blocks(spec: GeneratorSpec) -> Iterator[pa.Table]:
    for block in range((spec.rows + BLOCK_ROWS - 1) // BLOCK_ROWS):
        yield generate_block(spec, block)


def generate_table(spec: GeneratorSpec) -> pa.Table:
    """The whole dataset in memory (for tests and small datasets)."""
    return pa.concat_tables(list(_blocks(spec)))


# Writer settings are fixed here so the bytes depend only on the rows and the
# pinned pyarrow version, never on a caller's defaults.
_WRITER_OPTIONS: dict[str, object] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "data_page_version": "1.0",
    "version": "2.6",
}
_ROW_GROUP_ROWS = BLOCK_ROWS


def write_dataset(
    spec: GeneratorSpec, out_dir: str | os.PathLike[str], *, files: int = 1
) -> list[Path]:
    """Write the dataset as ``files`` Parquet files ``part-NNNNN.parquet``.

    The directory appears whole or not at all: files are written into a
    temporary sibling directory that is renamed into place at the end.
    """
    if files <= 0:
        raise InputError("files must be positive", found=files)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise InputError("output directory exists and is not empty", where=str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        bounds = np.linspace(0, spec.rows, files + 1).round().astype(np.int64)
        schema = SCHEMA.with_metadata({b"retrain.datagen": _origin_bytes(spec)})
        written = []
        blocks = _blocks(spec)
        pending: pa.Table | None = None
        for i in range(files):
            path = tmp / f"part-{i:05d}.parquet"
            want = int(bounds[i + 1] - bounds[i])
            with pq.ParquetWriter(path, schema, **_WRITER_OPTIONS) as writer:
                while want > 0:
                    if pending is None or pending.num_rows == 0:
                        pending = next(blocks)
                    take = min(want, pending.num_rows)
                    writer.write_table(
                        pending.slice(0, take).replace_schema_metadata(schema.metadata),
                        row_group_size=_ROW_GROUP_ROWS,
                    )
                    pending = pending.slice(take)
                    want -= take
            written.append(out / path.name)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
        return written
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _origin_bytes(spec: GeneratorSpec) -> bytes:
    from retrain.digest import canonical_json

    return canonical_json(spec.to_dict())


def read_origin(directory: str | os.PathLike[str]) -> dict[str, object] | None:
    """The generator parameters recorded in a generated dataset's files, if any."""
    import json

    files = sorted(Path(directory).rglob("*.parquet"))
    if not files:
        return None
    try:
        meta = pq.read_schema(files[0]).metadata or {}
    except (pa.ArrowInvalid, OSError):
        return None
    raw = meta.get(b"retrain.datagen")
    return json.loads(raw) if raw else None
