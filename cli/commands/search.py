"""``composer search``: search layouts, aggregate the best, extrapolate the winner (docs/search.md).

Thin: parses flags into a dict (``None`` = not given, so ``--resume`` keeps the stored value) and
hands it to ``search.run``. Every flag is documented in docs/search.md.
"""

from __future__ import annotations

import argparse


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def add_arguments(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--budget", type=int, help="evaluations of distinct layouts (default 200; capped at the space size)")
    a("--scale", help="target scale of the winner (default 350M)")
    a("--depth", type=int, help="layers searched per stage (default 6)")
    a("--total-depth", type=int, help="final proxy depth of --method end/middle (default 2 x depth)")
    a("--method", choices=("oneshot", "end", "middle"), help="search method (default oneshot)")
    a("--sampler", choices=("gp", "tpe", "random", "nsga2", "exhaustive"), help="proposal strategy (default gp)")
    a("--aggregate", choices=("N0", "N1", "Nall", "best"), help="aggregator (default N0)")
    a("--rule", choices=("stack", "stretch", "auto"), help="extrapolation rule (default auto)")
    a("--match", choices=("params", "flops", "none"), help="size matching at the target scale: every layout "
      "brought within 2 %% of the scale's Llama shape in non-embedding parameters (default params), in "
      "FLOPs per token, or none (the rule alone)")
    a("--objectives", type=_csv, help="score[,kv_cache|flops|params] (default score)")
    a("--primitives", type=_csv, help="shorthands to search over (default A,M)")
    a("--protocol", help="proxy protocol: capacity (default: graded memorization, the proxy that ranks "
      "like real text among attention/MLP layouts), another MAD protocol (cpu, paper), text (a small LM "
      "on real text) or mix (capacity + text; for spaces with recurrent primitives)")
    a("--tasks", type=_csv, help="subset of the protocol's MAD tasks (default: all of them)")
    a("--steps-scale", type=float, help="multiply the protocol's training steps (cheaper proxy)")
    a("--seed", type=int, help="seed of samplers, aggregator and evaluator (default 0)")
    a("--rung-share", type=float, help="share of the budget kept for more seeds of the leaders when the "
      "space is larger than the budget (default 0.25); a space that fits spends all that is left on them")
    a("--final-seeds", type=int, help="fresh seeds at which the winner and the Llama layout are rescored; "
      "the winner's margin is measured on them (default 3; 0: none)")
    a("--name", help="run name: folder runs/<name> (default <method>-<depth>L-<scale>-seed<seed>)")
    a("--runs-dir", help="parent folder of runs (default runs)")
    a("--storage", help="SQLAlchemy URL of the Optuna storage (default: SQLite in the run folder)")
    a("--resume", action="store_true", default=None, help="continue the stored run of this name")
    a("--workers", type=int, help="evaluations in flight at once, each in its own process (default 1)")
    a("--backend", choices=("local", "ray"), help="local processes (default) or Ray actors")
    a("--ray-address", help="Ray cluster to join, e.g. 10.0.0.5:6379 (default: RAY_ADDRESS, else a local one)")
    a("--cpus-per-worker", type=float, help="CPUs Ray reserves per evaluation worker (default 1)")
    a("--gpus-per-worker", type=float, help="GPUs Ray reserves per evaluation worker (default 0)")
    a("--max-retries", type=int, help="retries of an evaluation whose worker died or ran out of memory "
      "(default 2); a failure of the layout itself is recorded at once")
    a("--min-share", action="append", metavar="P=FRAC", help="at least FRAC of the layout is P (repeatable)")
    a("--max-share", action="append", metavar="P=FRAC", help="at most FRAC of the layout is P (repeatable)")
    a("--fixed", action="append", metavar="POS=P", help="pin position POS of the searched block to P")
    a("--max-params", help="cap on parameters at the target scale, e.g. 400M")
    a("--max-kv-bytes", help="cap on KV-cache bytes per sequence at the target scale, e.g. 200M")
    a("--cap-basis", choices=("extrapolated", "width"), help="measure caps on the extrapolated spec (default) "
      "or at target widths and proxy depth")
    a("--quiet", action="store_true", default=None, help="no progress bar")
    a("--evaluator", help=argparse.SUPPRESS)  # a registered evaluator kind (search.evaluators.EVALUATORS)


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
            "cpus_per_worker", "gpus_per_worker", "max_retries")
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


def _report(summary: dict) -> None:
    p, t, llama = summary["proxy"], summary["target"], summary["llama"]
    score = "-" if p["score"] is None else f"{p['score']:.4f}"
    llama_score = "-" if llama["proxy"]["score"] is None else f"{llama['proxy']['score']:.4f}"
    print(f"proxy winner   {p['pattern']} ({p['run_length']})  score {score}   llama {llama['proxy']['pattern']} "
          f"score {llama_score}")
    lt = llama["target"]
    print(f"at {t['scale']:<9}   {t['run_length']} ({t['n_layers']} layers, {t['rule']})  params {t['params']:,}  "
          f"KV {t['kv_cache_bytes']:,} B  (llama {lt['run_length']}: {lt['n_layers']} layers, "
          f"{lt['non_embedding_params']:,} non-embedding, KV {lt['kv_cache_bytes']:,} B)")
    m = summary.get("winner_vs_llama") or {}
    if m:
        ci = "n/a" if m.get("lo") is None else f"[{m['lo']:+.4f}, {m['hi']:+.4f}]"
        mean = "n/a" if m.get("mean") is None else f"{m['mean']:+.4f}"
        print(f"margin         winner - llama {mean}, 95 % CI {ci} on seeds {m.get('winner_seeds')}: {m['verdict']}")
    print(f"evaluations    {summary['budget']['used']} of budget {summary['budget']['effective']} "
          f"(asked {summary['budget']['requested']})   run folder: {summary['run_dir']}")


def run(args: argparse.Namespace) -> int:
    from composer.errors import UsageError

    try:
        given = _given(args)
    except ValueError as e:
        raise UsageError(str(e)) from None
    from search.run import run_search

    summary = run_search(given)
    _report(summary)
    return 0
