"""``composer dashboard RUN``: optuna-dashboard on the run's study storage (an optional extra)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run folder, or a run name under --runs-dir")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--runs-dir", default="runs", help="parent folder of runs (default runs/)")


def run(args: argparse.Namespace) -> int:
    import json

    from composer.errors import UsageError
    from search.analysis.tables import resolve_run

    path = resolve_run(args.run, args.runs_dir)
    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise UsageError("optuna-dashboard is not installed; pip install 'composer-hybrid[dashboard]' "
                         "(or pip install optuna-dashboard)") from None
    summary = path / "summary.json"
    stored = json.loads(summary.read_text()).get("settings", {}).get("storage") if summary.exists() else None
    url = stored or f"sqlite:///{(path / 'study.db').resolve()}"
    if url.startswith("sqlite:///") and not (path / "study.db").exists() and not stored:
        raise UsageError(f"RUN: {path} has no study.db; give the --storage URL's run or a local run folder")
    print(f"optuna-dashboard for {path.name} on http://{args.host}:{args.port}/ (Ctrl-C stops it)", flush=True)
    run_server(url, host=args.host, port=args.port)
    return 0
