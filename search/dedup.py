"""The run's evaluations by dedup key (``<arch_id>|<protocol>[|s<seed>]``), across its studies: a
layout already evaluated is answered from its row, never trained again."""

from __future__ import annotations

import dataclasses

import optuna

from search.budget import is_evaluation
from search.results.records import Row
from search.study_attrs import KEY, ROW

__all__ = ["Evaluated", "EvaluatedIndex"]


@dataclasses.dataclass(frozen=True)
class Evaluated:
    """One stored evaluation, found by its dedup key."""

    key: str
    study: str
    number: int
    row: Row

    @property
    def ok(self) -> bool:
        return self.row.status == "ok"


class EvaluatedIndex:
    """Every evaluation of the run by dedup key (``<arch_id>|<protocol>``), across its studies."""

    def __init__(self):
        self._by_key: dict[str, Evaluated] = {}

    @classmethod
    def load(cls, studies: list[optuna.Study]) -> "EvaluatedIndex":
        index = cls()
        for study in studies:
            for t in study.get_trials(deepcopy=False):
                if is_evaluation(t.user_attrs):
                    row = Row.from_dict(t.user_attrs[ROW])
                    index.add(Evaluated(t.user_attrs[KEY], study.study_name, t.number, row))
        return index

    def add(self, entry: Evaluated) -> None:
        self._by_key.setdefault(entry.key, entry)

    def get(self, key: str) -> Evaluated | None:
        return self._by_key.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return len(self._by_key)

    def rows(self) -> list[Row]:
        # eval_index is unique for one driver; drivers sharing a storage number their own rows, so ties
        # are broken by where the row is stored.
        return sorted((e.row for e in self._by_key.values()),
                      key=lambda r: (r.eval_index, r.study or "", r.trial_number or 0))
