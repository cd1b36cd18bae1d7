"""What a training run writes to its folder: Orbax checkpoints, metrics JSONL and JSON records.

Run folder layout::

    <out>/config.json      resolved TrainConfig (+ the data it read)
    <out>/spec.json        the ArchSpec trained
    <out>/metrics.jsonl    one JSON object per train step and per evaluation, flushed as written
    <out>/checkpoints/<step>/   Orbax checkpoint of {params, opt_state, step}

``RunFolder`` ties them together for ``composer.train``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from composer import atomic
from composer.data import TokenSource
from composer.errors import UsageError
from composer.spec import ArchSpec, arch_id
from composer.train_config import TrainConfig

__all__ = ["Checkpoints", "MetricsLog", "RunFolder", "write_json", "read_json"]


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (``composer.atomic``)."""
    atomic.write_json(path, obj)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


class Checkpoints:
    """Orbax ``CheckpointManager`` over ``directory`` holding ``{params, opt_state, step}``.

    Saving is synchronous: the train step donates its buffers, and on CPU a "device to host" copy
    may alias the donated memory that an asynchronous writer would still be reading.
    """

    def __init__(self, directory: str | os.PathLike, *, keep: int = 2):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = os.path.abspath(directory)  # Orbax requires absolute paths
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, params, opt_state) -> None:
        tree = {"params": params, "opt_state": opt_state, "step": np.asarray(step, np.int64)}
        self._manager.save(step, args=self._ocp.args.StandardSave(tree), force=True)

    def restore(self, step: int, params_like, opt_state_like) -> tuple[Any, Any]:
        """Restore checkpoint ``step`` into the structure, shapes and dtypes of the ``*_like`` trees."""
        like = {"params": params_like, "opt_state": opt_state_like, "step": np.asarray(0, np.int64)}
        abstract = jax.tree.map(self._ocp.utils.to_shape_dtype_struct, like)
        tree = self._manager.restore(step, args=self._ocp.args.StandardRestore(abstract))
        if int(tree["step"]) != step:
            raise RuntimeError(f"checkpoint {step} in {self.directory} records step {int(tree['step'])}")
        return tree["params"], tree["opt_state"]

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


class MetricsLog:
    """Append-only JSONL of metric records, each with an integer ``step``; flushed on every write."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = None

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (a resumed run rewrites the steps after its checkpoint)."""
        if not self.path.exists():
            return
        lines = [ln for ln in self.path.read_text().splitlines() if ln.strip()]
        kept = [ln for ln in lines if json.loads(ln).get("step", 0) <= step]
        atomic.write_text(self.path, "".join(ln + "\n" for ln in kept))

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            self._file = open(self.path, "a")
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @staticmethod
    def read(path: str | os.PathLike) -> list[dict[str, Any]]:
        """All records of a metrics file."""
        return [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]


def _describe(source: TokenSource) -> Any:
    return source.describe() if hasattr(source, "describe") else repr(source)


class RunFolder:
    """The run folder of ``config.out_dir``: records, metrics log and checkpoints (all off without one).

    Refuses a folder that already holds a checkpoint unless ``resume``, and a resume whose spec or
    loss-curve settings differ from the saved ones.
    """

    def __init__(self, spec: ArchSpec, source: TokenSource, config: TrainConfig, resume: bool):
        self.dir = Path(config.out_dir).expanduser().resolve() if config.out_dir else None
        self.metrics = self.ckpts = None
        if self.dir is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ckpts = Checkpoints(self.dir / "checkpoints", keep=config.keep_checkpoints)
        latest = self.ckpts.latest_step()
        if latest is not None and not resume:
            raise UsageError(f"{self.dir} already holds a run (checkpoint at step {latest}); "
                             "pass --resume to continue it, or choose another --out")
        if latest is not None:
            self._check_same_run(spec, config)
        record = {**config.to_dict(), "out_dir": str(self.dir), "arch_id": arch_id(spec), "data": _describe(source)}
        write_json(self.dir / "config.json", record)
        write_json(self.dir / "spec.json", spec.to_dict())
        self.metrics = MetricsLog(self.dir / "metrics.jsonl")

    def _check_same_run(self, spec: ArchSpec, config: TrainConfig) -> None:
        old_spec = ArchSpec.from_dict(read_json(self.dir / "spec.json"))
        if arch_id(old_spec) != arch_id(spec):
            raise UsageError(f"--resume: {self.dir} trained {arch_id(old_spec)}, not {arch_id(spec)}")
        saved = {k: v for k, v in read_json(self.dir / "config.json").items() if k not in ("arch_id", "data")}
        diff = config.trajectory_diff(TrainConfig.from_dict(saved))
        if diff:
            raise UsageError(f"--resume: {', '.join(diff)} differ from the run in {self.dir}; an exact resume "
                             "needs the same settings (only eval/checkpoint/log intervals may change)")

    def restore(self, params, opt_state):
        """``(step, params, opt_state)`` of the newest checkpoint, or step 0 and the inputs."""
        latest = self.ckpts.latest_step() if self.ckpts else None
        if latest is not None:
            params, opt_state = self.ckpts.restore(latest, params, opt_state)
        if self.metrics:
            self.metrics.truncate_after(latest or 0)
        return latest or 0, params, opt_state

    def close(self) -> None:
        for part in (self.metrics, self.ckpts):
            if part is not None:
                part.close()
