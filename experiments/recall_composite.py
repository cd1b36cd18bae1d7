"""``text-recall``: the ``text`` proxy plus ``cpu``'s in-context recall, judged from the stored rows.

A candidate defined before its first score (``experiments/results/proxy_variants.md``, "Predictions
(2026-12-07, eighth)"): the held-out misses of ``text`` and the Gated DeltaNet judge point to in-context
recall as the signal ``text`` lacks, and ``cpu`` stores its three recall tasks with every evaluation,
so the combination needs no training:

    score = 0.5 * (text - 0.607) / 0.034  +  0.5 * (recall - 0.696) / 0.188

``recall`` is the mean of ``in_context_recall``, ``noisy_in_context_recall`` and
``fuzzy_in_context_recall`` of the ``cpu`` evaluation of the same (layout, seed); the constants are the
mean and sample SD of the 13 fair-study panel layouts' mean scores (proxy scores only, no judge), as the
``mix`` protocol's were fitted.

It is judged like any protocol: every published set where ``text`` was judged at 12 layers (the
judge's own statistics, ``search.published.judge_report.judge``: seed-mean Spearman with the two-level
bootstrap, the set's rule of thumb on the same layouts) and the fair real-text study (13 layouts,
``search.fidelity.truth_report.build_summary``). ``text`` and ``cpu`` are recomputed by the same code
beside it, for reference.

    python experiments/recall_composite.py            # writes experiments/results/recall_composite.{md,json}
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from composer.atomic import write_json, write_text
from search.fidelity.proxy import rows_from_file
from search.fidelity.truth_report import build_summary
from search.fidelity.truth_rows import ProxyScore, TruthRow
from search.published.judge_records import Judgement, JudgeRow
from search.published.judge_report import judge
from search.published.selection import HELDOUT_JUDGES
from search.published.sets import resolve_sets
from search.results.parquet import read_parquet

RESULTS = Path(__file__).resolve().parent / "results"
RECALL_TASKS = ("in_context_recall", "noisy_in_context_recall", "fuzzy_in_context_recall")
TEXT_CENTER, TEXT_SCALE = 0.607, 0.034
RECALL_CENTER, RECALL_SCALE = 0.696, 0.188
NAME = "text-recall"
PROTOCOLS = (NAME, "text", "cpu")


def recall(tasks: dict[str, float]) -> float:
    """The mean of the three recall tasks of one ``cpu`` evaluation (NaN if one is missing)."""
    if not all(t in tasks for t in RECALL_TASKS):
        return math.nan
    return float(np.mean([tasks[t] for t in RECALL_TASKS]))


def combine(text: float, recall_value: float) -> float:
    """The ``text-recall`` score of one (layout, seed)."""
    return 0.5 * (text - TEXT_CENTER) / TEXT_SCALE + 0.5 * (recall_value - RECALL_CENTER) / RECALL_SCALE


def _pairs(rows):
    """(layout, seed) -> (text score, cpu tasks) where both were scored."""
    text, cpu = {}, {}
    for r in rows:
        if r.score is None or getattr(r, "status", None) not in (None, "ok"):
            continue
        if r.protocol == "text":
            text[(r.layout, r.seed)] = r.score
        elif r.protocol == "cpu":
            cpu[(r.layout, r.seed)] = json.loads(r.tasks_json or "{}")
    return {k: (text[k], cpu[k]) for k in text.keys() & cpu.keys()}


def published_rows(rows: list[JudgeRow]) -> list[JudgeRow]:
    """The stored published-judge rows plus one ``text-recall`` row per (layout, seed) with both parts."""
    out = list(rows)
    for (layout, seed), (t, tasks) in sorted(_pairs(rows).items()):
        r = recall(tasks)
        if math.isfinite(r):
            out.append(JudgeRow(layout=layout, seed=seed, protocol=NAME, score=combine(t, r), source="parts",
                                tasks_json=json.dumps({"text": t, "recall": r})))
    return out


def judge_published(parquet: Path, plan: Path) -> list[dict]:
    """Every 12-layer ``text`` judgement of the plan, judged again for each of ``PROTOCOLS``."""
    rows = published_rows([JudgeRow.from_dict(r) for r in read_parquet(parquet).to_dict("records")])
    judgements = [Judgement.from_dict(d) for d in json.loads(plan.read_text())["judgements"]]
    out = []
    for j in judgements:
        if j.protocol != "text" or j.depth != 12:
            continue
        s = resolve_sets(j.set)[0]
        for protocol in PROTOCOLS:
            r = judge(s, Judgement(j.set, protocol, j.depth, j.seeds, j.layouts), rows)
            sp = r.agreement.spearman if r.agreement else None
            out.append({"set": j.set, "protocol": protocol, "complete": r.complete, "n_scored": r.n_scored,
                        "spearman": None if sp is None else sp.value, "lo": None if sp is None else sp.lo,
                        "hi": None if sp is None else sp.hi,
                        "heuristic": r.heuristic.spearman.value if r.heuristic.spearman else None,
                        "beats_heuristic": r.beats_heuristic,
                        "scores": {lay.evaluated: dict(lay.scores) for lay in r.layouts}})
    return out


def fair_rows() -> list[ProxyScore]:
    """``text-recall`` on the fair-study panel from ``proxy_text.jsonl`` and ``proxy_cpu.jsonl``, beside them."""
    rows = rows_from_file(RESULTS / "proxy_text.jsonl") + rows_from_file(RESULTS / "proxy_cpu.jsonl")
    out = list(rows)
    for (layout, seed), (t, tasks) in sorted(_pairs(rows).items()):
        out.append(ProxyScore(layout=layout, seed=seed, protocol=NAME, score=combine(t, recall(tasks)),
                              source="parts"))
    return out


def judge_fair(truth_parquet: Path) -> dict[str, dict]:
    truth = [TruthRow.from_dict(r) for r in read_parquet(truth_parquet).to_dict("records")]
    rows = fair_rows()
    return {p: build_summary(truth, rows, proxy_protocol=p, n_boot=2000).to_dict()["correlation"] for p in PROTOCOLS}


def _f(x) -> str:
    return "n/a" if x is None or x != x else f"{x:+.2f}"


def report(published: list[dict], fair: dict[str, dict]) -> str:
    lines = ["# `text-recall` judged from the stored rows", "",
             "`score = 0.5 (text - 0.607) / 0.034 + 0.5 (recall - 0.696) / 0.188`, recall the mean of `cpu`'s "
             "three recall tasks at the same (layout, seed); defined before its first score "
             "(`proxy_variants.md`, \"Predictions (2026-12-07, eighth)\"). `text` and `cpu` recomputed by the "
             "same code. Spearman [95 % CI] against the published order, 12 layers, the seeds stored; "
             "`*`: above the set's rule of thumb; `(partial)`: a layout lacks a seed.", "",
             "| set | rule of thumb | " + " | ".join(f"`{p}`" for p in PROTOCOLS) + " |",
             "|---|---|" + "---|" * len(PROTOCOLS)]
    by = {(r["set"], r["protocol"]): r for r in published}
    names = list(dict.fromkeys(r["set"] for r in published))
    for name in names:
        cells = []
        for p in PROTOCOLS:
            r = by[(name, p)]
            cell = f"{_f(r['spearman'])} [{_f(r['lo'])}, {_f(r['hi'])}]" + ("*" if r["beats_heuristic"] else "")
            cells.append(cell + ("" if r["complete"] else " (partial)"))
        held = " (held out)" if name in HELDOUT_JUDGES else ""
        lines.append(f"| {name}{held} | {_f(by[(name, PROTOCOLS[0])]['heuristic'])} | " + " | ".join(cells) + " |")
    for p in PROTOCOLS:
        done = [by[(n, p)] for n in names if by[(n, p)]["spearman"] is not None and by[(n, p)]["complete"]]
        held = [r for r in done if r["set"] in HELDOUT_JUDGES]
        mean = lambda rs: _f(np.mean([r["spearman"] for r in rs]) if rs else None)  # noqa: E731
        wins = lambda rs: sum(bool(r["beats_heuristic"]) for r in rs)  # noqa: E731
        sp = fair[p]["all"]["spearman"]
        lines.append("")
        lines.append(f"- `{p}`: above the rule of thumb on {wins(done)} of {len(done)} complete sets (mean "
                     f"Spearman {mean(done)}); held out {wins(held)} of {len(held)}, mean {mean(held)}; fair real "
                     f"text (all layouts) {_f(sp['value'])} [{_f(sp['lo'])}, {_f(sp['hi'])}] over {sp['n_layouts']}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parquet = Path(argv[0]) if argv else RESULTS / "published.parquet"
    plan = Path(argv[1]) if len(argv) > 1 else RESULTS / "published_plan.json"
    published = judge_published(parquet, plan)
    fair = judge_fair(RESULTS / "fidelity_fair.parquet")
    text = report(published, fair)
    write_text(RESULTS / "recall_composite.md", text)
    write_json(RESULTS / "recall_composite.json", {"published": published, "fair": fair}, indent=1, default=float)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
