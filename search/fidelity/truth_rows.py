"""The typed rows of a fidelity study's tables and its stored plan (docs/fidelity.md, "Files").

- ``TruthRow``: one ground-truth training run, a row of ``fidelity.parquet``;
- ``GridRow``: one learning-rate run of a (layout, seed, budget) cell, a row of ``lr_grid.parquet``;
- ``ProxyScore``: one proxy evaluation of a (layout, seed), a row of ``proxy.parquet``;
- ``StoredPlan``: the last invocation's layouts, winner, proxy protocol and pairs (``plan.json``).

Each is frozen and built once (``runs``, ``proxy``); the files are only their serialisations
(``to_dict`` / ``from_dict``). A field newer than a stored file reads as its default (``None``, or
empty), so older studies load unchanged. Values are kept exactly as read (a number pandas stored as
NaN stays NaN, an integer column widened to float stays float): a table read and written back is
the same table, and the report reads the same numbers it always did.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from composer.jsontypes import FlatRecord, JSONValue, Record

__all__ = ["TruthRow", "GridRow", "ProxyScore", "StoredPlan"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TruthRow(FlatRecord):
    """One ground-truth run; fields in the order of ``table.TRUTH_COLUMNS`` (the file's column order).

    A run at one rate (``runs.fixed_rate_row``) leaves the ``lr_source``/``lr_grid_json``/``lr_at_edge``/
    ``dev_loss`` fields ``None``; a diverged run leaves the validation and training numbers ``None``.
    """

    key: str
    """``<layout>/s<seed>/t<tokens>`` (``plan.Job.key``): the run's identity in the table."""
    layout: str
    n_attention: int | None = None
    seed: int
    tokens: int
    """Tokens trained, whole batches (may exceed the budget asked for)."""
    steps: int | None = None
    scale: str | None = None
    rule: str | None = None
    target_pattern: str | None = None
    arch_id: str | None = None
    params: int | None = None
    non_embedding_params: int | None = None
    val_loss: float | None = None
    """Nats per byte on the fixed validation windows."""
    val_loss_se: float | None = None
    val_bpb: float | None = None
    val_accuracy: float | None = None
    val_tokens: int | None = None
    train_loss: float | None = None
    wall_s: float | None = None
    tokens_per_s: float | None = None
    compile_s: float | None = None
    status: str | None = None
    """``ok`` or ``diverged``."""
    error: str | None = None
    device: str | None = None
    finished_at: str | None = None
    lr: float | None = None
    """The peak rate trained at (under a grid: the one chosen on ``dev_loss``; ``None``: every rate diverged)."""
    lr_source: str | None = None
    """``grid`` (this cell ran the grid) or ``chosen on <key>`` (the rate of another cell's grid)."""
    lr_grid_json: str | None = None
    """``{rate: dev loss or null}`` of the cell's grid runs, as JSON text."""
    lr_at_edge: bool | None = None
    dev_loss: float | None = None
    match: str | None = None
    param_ratio: float | None = None
    flops_per_token: int | None = None
    flops_ratio: float | None = None
    tie_embeddings: bool | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class GridRow(FlatRecord):
    """One learning-rate run, scored on the dev split only; fields in the order of ``table.GRID_COLUMNS``."""

    key: str
    """``<cell>/<lr tag>``, e.g. ``AMAM/s0/t1000000/lr1e-03``."""
    cell: str
    """The ``TruthRow.key`` whose rate this run helps choose."""
    layout: str
    seed: int
    tokens: int
    lr: float
    dev_loss: float | None = None
    dev_loss_se: float | None = None
    train_loss: float | None = None
    status: str | None = None
    error: str | None = None
    wall_s: float | None = None
    tokens_per_s: float | None = None
    compile_s: float | None = None
    folder: str
    """The run's folder under ``train/`` (where the chosen run is scored on validation afterwards)."""
    arch_id: str | None = None
    finished_at: str | None = None
    pack: int | None = None
    """Rates trained together in one program with this one (``composer fidelity --pack``; rows written
    before packing read ``None``: one at a time)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProxyScore(FlatRecord):
    """One proxy evaluation of a (layout, seed) under a protocol; fields in the order of ``table.PROXY_COLUMNS``."""

    layout: str
    seed: int
    protocol: str | None = None
    score: float | None
    tasks_json: str | None = None
    """``{task: value}`` of the evaluation, as JSON text (the report's per-task agreement)."""
    source: str | None = None
    """Where the score came from: ``computed``, ``run:<name>`` or ``file:<name>``."""
    wall_s: float | None = None

    @property
    def key(self) -> tuple[str, int, str]:
        """A proxy evaluation is one (layout, seed, protocol): one study can hold several proxies."""
        return self.layout, int(self.seed), str(self.protocol)


@dataclasses.dataclass(frozen=True)
class StoredPlan(Record):
    """What the study's last invocation asked for (``plan.json``): what ``--report-only`` reports on."""

    layouts: tuple[str, ...] = ()
    winner: str | None = None
    proxy_protocol: str | None = None
    """``None``: a plan written before the protocol was recorded (the caller picks the default)."""
    pairs: tuple[tuple[str, str], ...] = ()


    @classmethod
    def from_dict(cls, data: Mapping[str, JSONValue]) -> StoredPlan:
        """A stored plan; older ones lack ``proxy_protocol`` and ``pairs``."""
        return cls(layouts=tuple(data.get("layouts") or ()), winner=data.get("winner"),
                   proxy_protocol=data.get("proxy_protocol"),
                   pairs=tuple(tuple(p) for p in data.get("pairs") or ()))


