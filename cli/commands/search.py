"""``composer search``: search layouts, aggregate the best, extrapolate the winner (docs/search.md).

Thin: parses flags into a dict (``None`` = not given, so ``--resume`` keeps the stored value) and
hands it to ``search.run``. Every flag is documented in docs/search.md.
"""

from __future__ import annotations

import argparse


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


_SETTINGS_FLAGS = ["budget", "scale", "depth", "total_depth", "method", "sampler", "aggregate", "rule", "match",
                   "objectives", "primitives", "protocol", "tasks", "steps_scale", "seed", "rung_share", "final_seeds",
                   "name", "runs_dir", "storage", "resume", "workers", "pack", "backend", "ray_address",
                   "cpus_per_worker", "gpus_per_worker", "max_retries", "quiet"]
"""Flags generated from ``SearchSettings`` (its field docstrings are the help, its defaults the defaults)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cli.commands._common import add_dataclass_flags
    from search.settings import METHODS, SearchSettings

    add_dataclass_flags(p, SearchSettings, _SETTINGS_FLAGS,
                        total_depth={"type": int}, steps_scale={"type": float},
                        method={"choices": METHODS},
                        sampler={"choices": ("gp", "tpe", "random", "nsga2", "exhaustive")},
                        aggregate={"choices": ("N0", "N1", "Nall", "best")},
                        rule={"choices": ("stack", "stretch", "auto")},
                        match={"choices": ("params", "flops", "none")}, backend={"choices": ("local", "ray")},
                        objectives={"type": _csv}, primitives={"type": _csv}, tasks={"type": _csv})
    a = p.add_argument
    a("--min-share", action="append", metavar="P=FRAC", help="at least FRAC of the layout is P (repeatable)")
    a("--max-share", action="append", metavar="P=FRAC", help="at most FRAC of the layout is P (repeatable)")
    a("--fixed", action="append", metavar="POS=P", help="pin position POS of the searched block to P")
    a("--max-params", help="cap on parameters at the target scale, e.g. 400M")
    a("--max-kv-bytes", help="cap on KV-cache bytes per sequence at the target scale, e.g. 200M")
    a("--cap-basis", choices=("extrapolated", "width"), help="measure caps on the extrapolated spec (default) "
      "or at target widths and proxy depth")
    a("--evaluator", help=argparse.SUPPRESS)  # a registered evaluator kind (search.evaluators.EVALUATORS)
    a("--json", action="store_true", help="print summary.json instead of the four-line report")


def _pairs(values, flag: str, key_type, value_type) -> list[tuple]:
    from composer.errors import UsageError

    out = []
    for text in values or ():
        key, sep, value = text.partition("=")
        try:
            if not sep:
                raise ValueError
            out.append((key_type(key.strip()), value_type(value.strip())))
        except ValueError:
            raise UsageError(f"{flag}: expected KEY=VALUE like A=0.2 or 0=A, got {text!r}") from None
    return out


def _given(args: argparse.Namespace) -> dict:
    from search.settings import parse_count

    keys = ("budget", "scale", "depth", "total_depth", "method", "sampler", "aggregate", "rule", "match", "objectives",
            "primitives", "protocol", "tasks", "steps_scale", "seed", "name", "runs_dir", "storage",
            "resume", "workers", "backend", "quiet", "evaluator", "final_seeds", "rung_share", "ray_address",
            "cpus_per_worker", "gpus_per_worker", "max_retries", "pack")
    given = {k: getattr(args, k) for k in keys}
    limits = {}
    if any(v is not None for v in (args.min_share, args.max_share, args.fixed, args.max_params,
                                   args.max_kv_bytes, args.cap_basis)):
        limits = {"min_share": _pairs(args.min_share, "--min-share", str, float),
                  "max_share": _pairs(args.max_share, "--max-share", str, float),
                  "fixed": _pairs(args.fixed, "--fixed", int, str),
                  "max_params": parse_count(args.max_params, "--max-params") if args.max_params else None,
                  "max_kv_bytes": parse_count(args.max_kv_bytes, "--max-kv-bytes") if args.max_kv_bytes else None,
                  "cap_basis": args.cap_basis or "extrapolated"}
    given["constraints"] = limits or None
    return given


def _report(summary) -> None:
    """Print what a ``search.results.reports.Summary`` says, in four lines."""
    p, t, lp, lt = summary.proxy, summary.target, summary.llama_proxy, summary.llama_target
    score = "-" if p.score is None else f"{p.score:.4f}"
    llama_score = "-" if lp.score is None else f"{lp.score:.4f}"
    print(f"proxy winner   {p.pattern} ({p.run_length})  score {score}   llama {lp.pattern} score {llama_score}")
    tb, lb = t.block(), lt.block()
    print(f"at {t.scale:<9}   {tb['run_length']} ({t.n_layers} layers, {t.rule})  params {t.params:,}  "
          f"KV {t.kv_cache_bytes:,} B  (llama {lb['run_length']}: {lt.n_layers} layers, "
          f"{lt.non_embedding_params:,} non-embedding, KV {lt.kv_cache_bytes:,} B)")
    m = summary.winner_vs_llama
    from search.results.summary import margin_text

    print(f"margin         winner - llama {margin_text(m.to_dict())}: {m.verdict}")
    b = summary.budget
    print(f"evaluations    {b.used} of budget {b.effective} (asked {b.requested})   "
          f"run folder: {summary.where.get('run_dir')}")


def run(args: argparse.Namespace) -> int:
    from composer.errors import UsageError

    try:
        given = _given(args)
    except ValueError as e:
        raise UsageError(str(e)) from None
    from search.run import run_search

    summary = run_search(given)
    evidence = _evidence(summary)
    warning = summary.learning.warning(summary.settings.get("steps_scale")) if summary.learning else None
    if warning:
        import sys

        print(f"composer search: warning: {warning}", file=sys.stderr)
    if args.json:
        from cli.commands._common import print_json

        print_json({**summary.to_dict(), "evidence": _as_json(evidence)})
    else:
        _report(summary)
        from search.published.evidence import evidence_lines
        from search.published.real_text import real_text_lines

        pattern = summary.proxy.pattern
        for head, lines in (("published", evidence_lines(pattern, evidence["published"])),
                            ("real text", real_text_lines(evidence["real_text"]))):
            for i, line in enumerate(lines):
                print(f"{head if i == 0 else '':<15}{line}")
    return 0


def _evidence(summary) -> dict:
    """What the judges say of the winner against the Llama layout of its depth: the published sets'
    heuristics (``search.published.evidence``) and the committed fair real-text study where it trained
    both (``search.published.real_text``). Written to ``evidence.json`` and added to ``summary.json``
    under ``evidence`` (the judges sit on the floor above the search, so the command adds them)."""
    import json
    from pathlib import Path

    from composer.atomic import write_json
    from search.published.evidence import published_evidence
    from search.published.real_text import real_text_evidence

    pattern, run_dir = summary.proxy.pattern, summary.where.get("run_dir")
    if not pattern or not run_dir:
        return {"published": [], "real_text": []}
    verdicts, text = published_evidence(pattern), real_text_evidence(pattern)
    write_json(str(Path(run_dir) / "evidence.json"),
               {"winner": pattern, "note": "published heuristics applied to the winner and the Llama layout of "
                                           "its depth (the winner itself was not trained at scale), and the "
                                           "committed fair real-text study where it trained both",
                "sets": [v.to_dict() for v in verdicts], "real_text": [v.to_dict() for v in text]})
    evidence = {"published": verdicts, "real_text": text}
    path = Path(run_dir) / "summary.json"
    stored = json.loads(path.read_text())
    stored["evidence"] = _as_json(evidence)
    write_json(str(path), stored)
    return evidence


def _as_json(evidence: dict) -> dict:
    """``{"published": [...], "real_text": [...]}`` as stored in ``summary.json``."""
    return {k: [v.to_dict() for v in vs] for k, vs in evidence.items()}
