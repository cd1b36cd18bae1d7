"""Apply the default-proxy selection rule (``search.published.selection``) to the committed judges.

Reads the published judge's ``published_summary.json``, the fair real-text study's proxy agreement
(``fidelity_fair_proxies.json``) and the measured cost of one six-layer evaluation per protocol
(``experiments/bench/results/protocols*.json``, as a ratio to ``capacity`` timed beside it; see
``costs``) and any directly timed ``make search`` (``SEARCH_RUNS``; see ``search_minutes``),
then prints and writes, for every candidate, its selection
score, eligibility and held-out numbers, winner or loser, and its scores on the judges reported
outside the target (``EXTRA_JUDGES``):

    python experiments/choose_default.py

writes ``experiments/results/default_choice.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from search.published.selection import DEFAULT_RULE, EXTRA_JUDGES, choose, held_out, scores_from_reports

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
BENCH = ROOT / "bench" / "results"
CANDIDATES = ("capacity", "cpu", "text", "mix", "capacity-lr", "text-short", "text-lr", "text-noconv", "text-long")
COST_RUNS = ("protocols.json", "protocols_lr.json", "protocols_text.json", "protocols_idle.json")
"""The cost benchmark runs in the order they were measured (a later run's ratio replaces an earlier
one's): the reference run, then ``capacity-lr`` and the text protocols on shared cores (2026-12-02),
then ``capacity``/``text-short``/``text`` again on an idle machine, 8 alternating rounds (2026-12-06)."""


def costs() -> dict[str, float | None]:
    """Seconds per six-layer evaluation on 2 cores, comparable across benchmark runs on a shared machine:
    each protocol's median relative to ``capacity`` timed beside it in the same run (the last run of
    ``COST_RUNS`` that timed it), times ``capacity``'s median in the reference run the rule's 17.4 s line was written
    against (``protocols.json``). ``mix`` costs a ``capacity`` plus a ``text`` evaluation."""
    ref = json.loads((BENCH / "protocols.json").read_text())["median_s"]["capacity"]
    ratio: dict[str, float] = {}
    for name in COST_RUNS:
        med = json.loads((BENCH / name).read_text()).get("median_s", {})
        if "capacity" in med:
            ratio.update({p: v / med["capacity"] for p, v in med.items()})
    out = {p: (ratio[p] * ref if p in ratio else None) for p in CANDIDATES}
    if out["mix"] is None and out["text"] is not None:
        out["mix"] = out["capacity"] + out["text"]
    return out


SEARCH_RUNS = ("search_protocols.json", "search_workers.json", "search_cache.json", "search_block64.json")
"""The ``make search`` timings in the order they were measured (a later run's minutes replace an earlier
one's): one worker (2026-12-06), then the default of two workers on a CPU (2026-12-07), then two
workers from an empty compilation cache (2026-12-07, ``--cache cold,warm``), then the same with the CPU
attention in query blocks of 64 (2026-12-07, ``text`` and ``capacity``)."""


def search_minutes() -> dict[str, float]:
    """Minutes of a directly timed ``make search`` per protocol (amendment A1): the runs of ``SEARCH_RUNS``
    that finished, a benchmark run counted only when ``capacity`` was timed in it, the latest run's
    minutes for each protocol (the search under the defaults of its day). A rerun on the compilation
    cache its first run filled (``cache: warm``) is left out: the hour is a user's first search."""
    out: dict[str, float] = {}
    for name in SEARCH_RUNS:
        path = BENCH / name
        if not path.exists():
            continue
        runs = [r for r in json.loads(path.read_text())["runs"]
                if r.get("rc") == 0 and r.get("protocol") and r.get("cache") != "warm"]
        if any(r["protocol"] == "capacity" for r in runs):
            out.update({r["protocol"]: float(r["wall_min"]) for r in runs})
    return out


def judge_scores():
    published = json.loads((RESULTS / "published_summary.json").read_text())
    fair = json.loads((RESULTS / "fidelity_fair_proxies.json").read_text())
    return scores_from_reports(published, fair)


def choose_now(scores=None, cost=None, timed=None):
    """The rule applied to the committed judges, costs and search timings (what ``main`` writes); each
    input read from its file unless given."""
    return choose(judge_scores() if scores is None else scores, costs() if cost is None else cost,
                  search_minutes=search_minutes() if timed is None else timed)


def main() -> int:
    scores, cost, timed = judge_scores(), costs(), search_minutes()
    sel = choose_now(scores, cost, timed)
    held = {c.protocol: held_out(scores, c.protocol) for c in sel.candidates}
    lines = [f"chosen: {sel.protocol}", "",
             "| protocol | s per evaluation | selection mean Spearman | heuristics beaten (selection) | eligible "
             "| held-out mean Spearman | held-out heuristics beaten | held-out target |",
             "|---|---|---|---|---|---|---|---|"]
    for c in sel.candidates:
        h = held[c.protocol]
        n_ho = sum(j is not None for j in h.judges)
        fmt = lambda v: "n/a" if v is None else f"{v:+.2f}"  # noqa: E731
        lines.append(f"| `{c.protocol}` | {'n/a' if c.eval_s is None else f'{c.eval_s:.1f}'} | "
                     f"{fmt(c.selection_score)} | {c.heuristic_wins} | {c.reason} | {fmt(h.mean_spearman)} | "
                     f"{h.beats} of {n_ho} judged ({len(h.judges)}) | {'met' if h.meets_target else 'missed'} |")
    by = {(s.protocol, s.judge): s for s in scores}
    # every judge, the ones outside the target (reported, never read by the rule) last
    judges = DEFAULT_RULE.selection + DEFAULT_RULE.heldout + EXTRA_JUDGES
    lines += ["", "| protocol | " + " | ".join(judges) + " |", "|---|" + "---|" * len(judges)]
    for c in sel.candidates:
        cells = []
        for j in judges:
            s = by.get((c.protocol, j))
            cells.append("" if s is None else f"{s.spearman:+.2f}" + (
                "" if s.heuristic_spearman is None else f" (rule {s.heuristic_spearman:+.2f})"))
        lines.append(f"| `{c.protocol}` | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    outside = {c.protocol: {j: {"spearman": by[c.protocol, j].spearman,
                                "heuristic": by[c.protocol, j].heuristic_spearman}
                            for j in EXTRA_JUDGES if (c.protocol, j) in by} for c in sel.candidates}
    out = {"selection": sel.to_dict(), "held_out": {p: h.to_dict() for p, h in held.items()},
           "outside_target": outside, "costs_s": cost, "search_minutes": timed}
    (RESULTS / "default_choice.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
