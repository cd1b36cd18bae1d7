"""The rule that picks the default proxy protocol, fixed before any candidate is judged.

A proxy is chosen by judges it was not tuned on (docs/published.md, "Choosing the default proxy"). The
judges split into two halves, named here once:

* the **selection half** (``SELECTION_JUDGES``): the published sets the rule reads (Bae et al. 2025
  at 350M; Samba's placement of full attention among Mamba blocks and its 438M layer arrangements)
  and the fair real-text study (``fair_real_text``: Spearman against its seed-mean validation loss);
* the **held-out half** (``HELDOUT_JUDGES``): Bae et al. at 1B, Mamba-2's number of attention layers
  at 350M, Kimi Linear's delta-rule:attention ratio and Samba's 1.3B arrangements, reported for every
  candidate, winner or loser, and never read by the choice. ``EXTRA_JUDGES`` (Mamba-2's 2.7B hybrids,
  Press et al.'s sublayer orderings, and Gated DeltaNet's 1.3B models, a set added after the rule
  was fixed that no candidate was defined from) are reported beside them but are not part of the
  target.

The rule (``choose``):

1. A candidate is **eligible** if it has a score on every selection judge and one evaluation costs at
   most ``max_eval_s`` seconds on 2 CPU cores (``make search``'s 206 evaluations in an hour). Where
   ``make search`` itself was timed under the candidate on this machine (``search_minutes``), that
   replaces the per-evaluation line: eligible if it finished within ``max_search_min`` minutes, the
   cost target the line stands for (amendment A1, experiments/results/proxy_variants.md: written after
   the candidates' scores were known, before the timings were).
2. Its **selection score** is the mean Spearman over the selection judges (point values: the
   intervals of single sets are too wide to rank by, and every candidate faces the same sets).
3. The candidate with the highest selection score wins; candidates within ``tie`` of the best are
   tied, and a tie goes to the one that beats the sets' heuristics on more selection sets, then to the
   cheaper one, then to the name (so the rule is a function of its inputs).

``held_out`` reports a candidate on the other half: per judge its Spearman beside the heuristic's,
how many it beats, the mean, and whether the issue's target is met (beats the heuristic on at least
three of the four, mean Spearman >= 0.6).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

__all__ = ["JudgeScore", "SelectionRule", "DEFAULT_RULE", "Candidate", "Selection", "HeldOut", "choose", "held_out",
           "scores_from_reports", "SELECTION_JUDGES", "HELDOUT_JUDGES", "EXTRA_JUDGES", "FAIR_TEXT"]

FAIR_TEXT = "fair_real_text"
SELECTION_JUDGES = ("bae2025_350m", "samba2025_position", "samba2025_layers_438m", FAIR_TEXT)
HELDOUT_JUDGES = ("bae2025_1b", "mamba2_2024_num_attention", "kimi2025_ratio", "samba2025_layers_1.3b")
EXTRA_JUDGES = ("mamba2_2024_hybrids_2.7b", "press2020_orderings", "gated_deltanet2025_1.3b")


@dataclasses.dataclass(frozen=True)
class JudgeScore:
    """One protocol judged by one judge: Spearman of its seed-mean scores against the judge's order."""

    judge: str
    protocol: str
    spearman: float
    heuristic_spearman: float | None = None
    """The set's rule of thumb on the same layouts (``None``: the judge has none, e.g. real text)."""
    n_layouts: int = 0

    @property
    def beats_heuristic(self) -> bool | None:
        if self.heuristic_spearman is None:
            return None
        return self.spearman > self.heuristic_spearman


@dataclasses.dataclass(frozen=True)
class SelectionRule:
    selection: tuple[str, ...] = SELECTION_JUDGES
    heldout: tuple[str, ...] = HELDOUT_JUDGES
    max_eval_s: float = 17.4
    """One evaluation's median wall seconds on 2 CPU cores, at most (206 evaluations in an hour)."""
    tie: float = 0.02
    max_search_min: float = 60.0
    """A directly timed ``make search`` (``--budget 200 --scale 350M``, packing on), minutes at most."""

    def __post_init__(self) -> None:
        if set(self.selection) & set(self.heldout):
            raise ValueError(f"a judge cannot be in both halves: {sorted(set(self.selection) & set(self.heldout))}")


DEFAULT_RULE = SelectionRule()


@dataclasses.dataclass(frozen=True)
class Candidate:
    protocol: str
    eval_s: float | None
    selection_score: float | None
    """Mean Spearman over the selection judges (``None``: a judge is missing)."""
    heuristic_wins: int
    eligible: bool
    reason: str


@dataclasses.dataclass(frozen=True)
class Selection:
    protocol: str | None
    """The chosen default (``None`` when no candidate is eligible)."""
    candidates: tuple[Candidate, ...]
    """Every candidate, best first (eligible before ineligible)."""
    rule: SelectionRule

    def to_dict(self) -> dict:
        return {"protocol": self.protocol, "rule": dataclasses.asdict(self.rule),
                "candidates": [dataclasses.asdict(c) for c in self.candidates]}


@dataclasses.dataclass(frozen=True)
class HeldOut:
    protocol: str
    judges: tuple[JudgeScore | None, ...]
    """One per held-out judge, in the rule's order (``None``: not judged)."""
    beats: int
    mean_spearman: float | None
    meets_target: bool

    def to_dict(self) -> dict:
        return {"protocol": self.protocol, "beats": self.beats, "mean_spearman": self.mean_spearman,
                "meets_target": self.meets_target,
                "judges": [None if j is None else {**dataclasses.asdict(j), "beats_heuristic": j.beats_heuristic}
                           for j in self.judges]}


def _index(scores: Iterable[JudgeScore]) -> dict[tuple[str, str], JudgeScore]:
    out: dict[tuple[str, str], JudgeScore] = {}
    for s in scores:
        if (s.protocol, s.judge) in out:
            raise ValueError(f"two scores of {s.protocol} by {s.judge}")
        if math.isfinite(s.spearman):
            out[(s.protocol, s.judge)] = s
    return out


def choose(scores: Iterable[JudgeScore], costs: Mapping[str, float | None],
           rule: SelectionRule = DEFAULT_RULE, search_minutes: Mapping[str, float] | None = None) -> Selection:
    """Apply the rule to every protocol in ``costs`` (protocol -> seconds per evaluation). Only the
    selection judges' scores are read; held-out scores may be present and change nothing.
    ``search_minutes`` (protocol -> minutes of a directly timed ``make search``) replaces the
    per-evaluation line for the protocols it names."""
    timed = dict(search_minutes or {})
    by = _index(s for s in scores if s.judge in rule.selection)
    cands = []
    for protocol, eval_s in costs.items():
        got = [by.get((protocol, j)) for j in rule.selection]
        missing = [j for j, g in zip(rule.selection, got) if g is None]
        wins = sum(1 for g in got if g is not None and g.beats_heuristic)
        score = None if missing else sum(g.spearman for g in got) / len(got)
        ok = False
        if missing:
            reason = f"not judged by {', '.join(missing)}"
        elif protocol in timed:
            minutes = timed[protocol]
            ok = minutes <= rule.max_search_min
            reason = f"{'eligible: ' if ok else ''}make search took {minutes:.1f} min " \
                     f"{'<=' if ok else '>'} {rule.max_search_min:g}"
        elif eval_s is None or not math.isfinite(eval_s):
            reason = "cost not measured"
        elif eval_s > rule.max_eval_s:
            reason = f"{eval_s:.1f} s per evaluation > {rule.max_eval_s:g} s"
        else:
            ok, reason = True, "eligible"
        cands.append(Candidate(protocol, eval_s, score, wins, ok, reason))
    eligible = [c for c in cands if c.eligible]
    best = max((c.selection_score for c in eligible), default=math.nan)
    tied = sorted((c for c in eligible if c.selection_score >= best - rule.tie),
                  key=lambda c: (-c.heuristic_wins, c.eval_s if c.eval_s is not None else math.inf, c.protocol))
    rest = sorted((c for c in eligible if c not in tied), key=lambda c: (-c.selection_score, c.protocol))
    refused = sorted((c for c in cands if not c.eligible), key=lambda c: c.protocol)
    ordered = tuple(tied + rest + refused)
    return Selection(tied[0].protocol if tied else None, ordered, rule)


def held_out(scores: Iterable[JudgeScore], protocol: str, rule: SelectionRule = DEFAULT_RULE,
             *, min_beats: int = 3, min_mean: float = 0.6) -> HeldOut:
    """``protocol`` on the held-out judges (the target: beats ``min_beats`` heuristics, mean >= ``min_mean``)."""
    by = _index(scores)
    judges = tuple(by.get((protocol, j)) for j in rule.heldout)
    got = [j for j in judges if j is not None]
    beats = sum(1 for j in got if j.beats_heuristic)
    mean = sum(j.spearman for j in got) / len(got) if got else None
    complete = len(got) == len(judges)
    return HeldOut(protocol, judges, beats, mean,
                   complete and beats >= min_beats and mean is not None and mean >= min_mean)


def scores_from_reports(published_summary: Mapping, fair_proxies: Mapping | None = None) -> list[JudgeScore]:
    """The judge scores of the committed reports: ``published_summary.json``'s judgements (complete ones)
    and ``fidelity_fair_proxies.json`` (Spearman over all its layouts, as ``fair_real_text``)."""
    out = []
    for j in published_summary.get("judgements", []):
        rho = (j.get("spearman") or {}).get("value")
        if not j.get("complete") or rho is None:
            continue
        heur = ((j.get("heuristic") or {}).get("spearman") or {}).get("value")
        out.append(JudgeScore(j["set"], j["protocol"], float(rho), None if heur is None else float(heur),
                              int((j.get("spearman") or {}).get("n_layouts") or 0)))
    for protocol, block in (fair_proxies or {}).items():
        rho = block["correlation"]["all"]["spearman"]
        out.append(JudgeScore(FAIR_TEXT, protocol, float(rho["value"]), None, int(rho["n_layouts"])))
    return out
