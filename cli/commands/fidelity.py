"""``composer fidelity``: judge a proxy's ranking, against real-text training at a target scale (the default)
or against published results of models trained at scale (``--published``, docs/published.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.commands._common import format_default, print_json, train_flags

_RECIPE = {  # flag -> (FidelitySettings field, type, help); defaults live in FidelitySettings
    "--scale": ("scale", str, "target scale every layout is extrapolated to"),
    "--rule": ("rule", str, "extrapolation rule: stack, stretch or auto"),
    "--corpus": ("corpus", str, "real-text corpus (gutenberg)"),
    **train_flags("batch_size", "seq_len", "lr", "warmup_frac", "decay_frac", "weight_decay", "grad_clip"),
    "--dtype": ("dtype", str, "compute dtype: float32 or bfloat16"),
    "--val-windows": ("val_windows", int, "fixed validation windows (0: the whole held-out split)"),
    "--lrs": ("lrs", str, "learning-rate grid, comma-separated: each layout keeps its best rate on the dev split "
                          "one rate: a fixed rate for all"),
    "--grid-seeds": ("grid_seeds", str, "first: the grid on the first seed, the others at its rate; all: every run"),
    "--lr-extend": ("lr_extend", int, "rates added past a grid edge when the best rate is on it"),
    "--dev-fraction": ("dev_fraction", float, "share of every training book held out to choose the rate on"),
    "--dev-windows": ("dev_windows", int, "fixed dev windows each grid run is scored on"),
    "--match": ("match", str, "size matching to the scale's Llama shape: params, flops or none"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from search.fidelity.plan import FidelitySettings
    from search.protocols import DEFAULT_PROTOCOL

    g = p.add_argument_group("layouts")
    g.add_argument("--patterns", help="comma-separated small layouts, e.g. AAAMMM,AMAMAM")
    g.add_argument("--layouts", help="comma-separated named layouts (llama, striped_1_2, ...) at --depth")
    g.add_argument("--depth", type=int, default=None, help="layers of the named --layouts (default 6); with "
                                                         "--published, the mapped depth (default: published)")
    g.add_argument("--from-run", help="a search run (name under --runs-dir, or a folder): its --top best layouts, "
                                      "its winner and the Llama layout; its rule and proxy scores are used")
    g.add_argument("--top", type=int, default=None, help="how many of --from-run's best layouts")
    g.add_argument("--winner", default=None, help="layout compared with the Llama layout (default: the run's "
                                                 "winner, else the proxy's best)")
    b = p.add_argument_group("budget")
    b.add_argument("--tokens", default="1M", help="training tokens per run (default 1M)")
    b.add_argument("--seeds", default="2", help="seeds per layout: a count or a list (default 2)")
    b.add_argument("--long-patterns", default=None, help="layouts also trained at --long-tokens (order check)")
    b.add_argument("--long-tokens", default=None, help="token budget of the long runs (e.g. 4M)")
    b.add_argument("--long-seeds", default="1", help="seeds of the long runs (default 1)")
    b.add_argument("--ladder", action="append", default=None, metavar="TOKENS:PATTERNS:SEEDS",
                   help="a further rung of the token ladder, after the long runs, at each layout's rate chosen "
                        "at --tokens: e.g. 16M:AAMMMM,MMMMAA:1 (a seed count or a list); repeatable")
    b.add_argument("--max-runs", type=int, default=None, help="stop after this many new runs (resume later)")
    b.add_argument("--pack", type=int, default=1,
                   help="train up to this many rates of a layout's grid in one compiled program "
                        "(composer.packed_train: the same rows to float rounding; a pack counts its rates "
                        "against --max-runs; default 1: one at a time)")
    b.add_argument("--pairs", default=None, help="contender pairs reported with pooled intervals at every budget, "
                                                "e.g. MMMMMA:AMAMAM,SMSMAM:AMAMAM")
    r = p.add_argument_group("recipe (kept for the life of a study)")
    for flag, (field, typ, help_text) in _RECIPE.items():
        r.add_argument(flag, dest=field, type=typ, default=None,
                       help=f"{help_text} (default: {format_default(FidelitySettings.default(field))}; "
                            "a study keeps its own)")
    r.add_argument("--untied-head", action="store_true", default=None,
                   help="an LM head of its own instead of one tied to the embedding (default: tied)")
    x = p.add_argument_group("proxy side")
    x.add_argument("--proxy-from", default=None, help="proxy scores: a JSONL of `composer evaluate --json` "
                                                     "results, a leaderboard parquet or a search run folder")
    x.add_argument("--proxy-seeds", default="3", help="proxy seeds computed for layouts without scores "
                                                     "(a count or a list; 0: compute none)")
    x.add_argument("--proxy-protocol", default=None, help="protocol of the proxy scores (default: the study's, "
                                                         f"else {DEFAULT_PROTOCOL}, the search's default)")
    j = p.add_argument_group("published judge (docs/published.md)")
    j.add_argument("--published", default=None, metavar="SETS",
                   help="judge proxies against published sets instead of training: 'all', set names or set "
                        "files, comma-separated; --seeds are then proxy seeds")
    j.add_argument("--protocol", default=None, help="with --published: protocol(s) judged, comma-separated "
                                                    f"(default {DEFAULT_PROTOCOL})")
    j.add_argument("--workers", type=int, default=None, help="with --published: local worker processes "
                                                            "(default 1)")
    j.add_argument("--steps-scale", type=float, default=None, help="with --published: multiply the protocol's "
                                                                   "training steps (a cheaper screen)")
    p.add_argument("--name", default=None, help="study name (folder under --runs-dir; default fidelity-<scale>, "
                                                "with --published: published)")
    p.add_argument("--runs-dir", default="runs", help="parent folder of runs (default runs/)")
    p.add_argument("--report-only", action="store_true", help="rewrite the report from the stored tables")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    p.add_argument("--json", action="store_true", help="print summary.json")


def _settings(args: argparse.Namespace, from_run_rule: str | None):
    """The recipe from the flags given, and the names of the fields they set (the rest: a stored
    study's values, or the defaults of a new study)."""
    from composer.lr_grid import parse_lrs
    from search.fidelity.plan import FidelitySettings

    fields = {f: getattr(args, f) for f, _, _ in _RECIPE.values() if getattr(args, f) is not None}
    if "lrs" in fields:
        fields["lrs"] = parse_lrs(fields["lrs"])
    elif "lr" in fields:  # one given rate: every layout trains at it (still scored on dev, then validation)
        fields["lrs"] = (fields["lr"],)
    if getattr(args, "untied_head", None):
        fields["tie_embeddings"] = False
    if from_run_rule and "rule" not in fields:
        fields["rule"] = from_run_rule
    return FidelitySettings.of(**fields), set(fields)


def _parse_pairs(text: str | None) -> list[tuple[str, str]]:
    from composer.errors import UsageError

    out = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        parts = item.split(":")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise UsageError(f"--pairs: {item!r} is not a pair; write FIRST:SECOND, e.g. MMMMMA:AMAMAM")
        out.append((parts[0].strip(), parts[1].strip()))
    return out


def _run_dir(runs_dir: str, name: str) -> Path:
    from composer.errors import UsageError

    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise UsageError(f"--name: {name!r} is not a plain folder name; use letters, digits, - and _")
    path = Path(runs_dir) / name
    if (path / "leaderboard.parquet").exists():  # its summary.json would be overwritten
        raise UsageError(f"--name: {path} is a search run; give the study its own --name (e.g. {name}-fidelity)")
    return path


def _search_run(args: argparse.Namespace) -> Path | None:
    from composer.errors import UsageError

    if not args.from_run:
        if args.top is not None:
            raise UsageError("--top needs --from-run RUN")
        return None
    path = Path(args.from_run)
    if not path.is_dir():
        path = Path(args.runs_dir) / args.from_run
    if not path.is_dir():
        raise UsageError(f"--from-run: unknown run {args.from_run!r} (no folder {path}); list runs with "
                         f"`ls {args.runs_dir}`")
    return path


def _run_rule(run: Path | None) -> str | None:
    import json

    if run is None or not (run / "summary.json").exists():
        return None
    try:
        return json.loads((run / "summary.json").read_text())["settings"]["rule"]
    except (ValueError, KeyError, TypeError):
        return None


_TRAINING_ONLY = ("patterns", "layouts", "from_run", "top", "winner", "long_patterns", "long_tokens", "ladder",
                  "proxy_from", "proxy_protocol")


def _rung(text: str) -> tuple[int, list[str], tuple[int, ...]]:
    """``--ladder TOKENS:PATTERNS:SEEDS`` as (tokens, layouts, seeds)."""
    from composer.errors import UsageError
    from search.fidelity import plan

    parts = text.split(":")
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise UsageError(f"--ladder: expected TOKENS:PATTERNS:SEEDS (e.g. 16M:AAMMMM,MMMMAA:1), got {text!r}")
    return (plan.parse_tokens(parts[0], "--ladder"), plan.resolve_layouts(patterns=parts[1]),
            plan.parse_seeds(parts[2], "--ladder"))


def run_published(args: argparse.Namespace) -> int:
    """``--published``: score protocols on published sets (no training at a target scale)."""
    from composer.errors import UsageError
    from search.fidelity import plan
    from search.published.judge import JudgeRequest, run_judge
    from search.published.sets import resolve_sets

    given = [f"--{a.replace('_', '-')}" for a in _TRAINING_ONLY if getattr(args, a) is not None]
    given += [flag for flag, (f, _, _) in _RECIPE.items() if getattr(args, f) is not None]
    given += ["--untied-head"] * bool(args.untied_head) + ["--pairs"] * bool(args.pairs)
    if given:
        raise UsageError(f"--published judges proxies without training; drop {', '.join(given)}")
    if args.depth is not None and (args.depth < 2 or args.depth % 2):
        raise UsageError(f"--depth: the mapped depth must be an even number >= 2, got {args.depth}")
    if args.steps_scale is not None and args.steps_scale <= 0:
        raise UsageError(f"--steps-scale must be > 0, got {args.steps_scale}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    from search.protocols import DEFAULT_PROTOCOL, check_protocol

    protocols = [check_protocol(p.strip()) for p in (args.protocol or DEFAULT_PROTOCOL).split(",") if p.strip()]
    if not protocols:
        raise UsageError("--protocol: give at least one protocol, e.g. capacity")
    sets = [] if args.report_only else resolve_sets(args.published)
    req = JudgeRequest(run_dir=_run_dir(args.runs_dir, args.name or "published"), sets=sets,
                       protocols=protocols, seeds=plan.parse_seeds(args.seeds), depth=args.depth,
                       steps_scale=args.steps_scale, progress=not args.no_progress,
                       report_only=args.report_only, max_evals=args.max_runs, workers=args.workers or 1)
    summary = run_judge(req)
    if args.json:
        print_json(summary)
    else:
        print((req.run_dir / "published.md").read_text())
        print(f"study folder {req.run_dir} (published.parquet, published.md, summary.json, published-*.png)")
    return 0


def run(args: argparse.Namespace) -> int:
    from composer.errors import UsageError
    from search.fidelity import plan

    if args.published is not None:
        return run_published(args)
    for flag, value in (("--protocol", args.protocol), ("--steps-scale", args.steps_scale),
                        ("--workers", args.workers)):
        if value is not None:
            raise UsageError(f"{flag} belongs to --published; for the real-text study use --proxy-protocol")
    if args.depth is None:
        args.depth = 6
    from search.fidelity.proxy import rows_from_file, rows_from_run
    from search.fidelity.truth_study import StudyRequest, run_study

    if args.proxy_protocol is not None:
        from search.protocols import check_protocol

        check_protocol(args.proxy_protocol, "--proxy-protocol")
    search_run = _search_run(args)
    settings, explicit = _settings(args, _run_rule(search_run))
    name = args.name or f"fidelity-{settings.scale}"
    run_dir = _run_dir(args.runs_dir, name)
    layouts: list[str] = []
    if not args.report_only or args.patterns or args.layouts or search_run:
        layouts = plan.resolve_layouts(patterns=args.patterns, layouts=args.layouts, depth=args.depth,
                                       from_run=search_run, top=args.top)
    long_layouts = plan.resolve_layouts(patterns=args.long_patterns) if args.long_patterns else []
    if long_layouts and not args.long_tokens:
        raise UsageError("--long-patterns needs --long-tokens (e.g. 4M)")
    tokens = plan.parse_tokens(args.tokens)
    long_tokens = plan.parse_tokens(args.long_tokens, "--long-tokens") if args.long_tokens else None
    seeds = plan.parse_seeds(args.seeds)
    proxy_seeds = () if str(args.proxy_seeds).strip() == "0" else plan.parse_seeds(args.proxy_seeds, "--proxy-seeds")
    proxy_rows = rows_from_run(search_run) if search_run else []
    if args.proxy_from:
        proxy_rows += rows_from_file(Path(args.proxy_from))
    winner = args.winner or (plan._run_winner(search_run) if search_run else None)
    req = StudyRequest(run_dir=run_dir, settings=settings, layouts=layouts,
                       jobs=plan.jobs(layouts, seeds, tokens, long_layouts, long_tokens,
                                      plan.parse_seeds(args.long_seeds, "--long-seeds"),
                                      rungs=[_rung(text) for text in args.ladder or ()]),
                       proxy_seeds=proxy_seeds, proxy_protocol=args.proxy_protocol, proxy_rows=proxy_rows,
                       compute_proxy=bool(proxy_seeds), winner=winner, report_only=args.report_only,
                       progress=not args.no_progress, max_runs=args.max_runs, explicit=explicit,
                       pairs=_parse_pairs(args.pairs), pack=args.pack)
    if args.pack < 1:
        raise UsageError(f"--pack: must be an integer >= 1 (1: one rate at a time), got {args.pack}")
    summary = run_study(req)
    if args.json:
        print_json(summary)
    else:
        print((run_dir / "fidelity.md").read_text())
        print(f"study folder {run_dir} (fidelity.parquet, proxy.parquet, fidelity.md, summary.json, fidelity.png)")
    return 0
