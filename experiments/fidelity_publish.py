"""Copy a fidelity study's report and tables into experiments/results/ under one prefix, or back.

    python experiments/fidelity_publish.py runs/fidelity-small experiments/results/fidelity_small
        writes <prefix>.md, <prefix>_summary.json, <prefix>.png, <prefix>.parquet, <prefix>_proxy.parquet
        <prefix>_settings.json and <prefix>_lr_grid.parquet (the learning-rate runs) from the study folder;
    python experiments/fidelity_publish.py --restore runs/fidelity-small experiments/results/fidelity_small
        seeds a study folder that does not exist yet from those committed files, so a fresh clone's
        `make fidelity` continues the committed study instead of starting it again.
"""

import shutil
import sys
from pathlib import Path

FILES = {"fidelity.md": ".md", "summary.json": "_summary.json", "fidelity.png": ".png",
         "fidelity.parquet": ".parquet", "proxy.parquet": "_proxy.parquet", "settings.json": "_settings.json",
         "plan.json": "_plan.json", "lr_grid.parquet": "_lr_grid.parquet"}
STATE = ("fidelity.parquet", "proxy.parquet", "settings.json")
OPTIONAL_STATE = ("plan.json", "lr_grid.parquet")
"""Restored when committed: a study without a grid has no lr_grid.parquet."""


def publish(study: Path, prefix: Path) -> int:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    copied = 0
    for name, suffix in FILES.items():
        if (study / name).exists():
            shutil.copyfile(study / name, prefix.with_name(prefix.name + suffix))
            copied += 1
    print(f"copied {copied} file(s) from {study} to {prefix}*")
    return 0 if copied else 1


def restore(study: Path, prefix: Path) -> int:
    if any((study / name).exists() for name in ("fidelity.parquet", "settings.json", "lr_grid.parquet")):
        print(f"{study} already holds a study; nothing restored")
        return 0
    sources = {name: prefix.with_name(prefix.name + FILES[name]) for name in STATE}
    if not sources["settings.json"].exists():
        print(f"no committed study at {prefix}*; starting afresh")
        return 0
    study.mkdir(parents=True, exist_ok=True)
    for name, src in sources.items():  # a study stopped inside its first grid has no truth table yet
        if src.exists():
            shutil.copyfile(src, study / name)
    for name in OPTIONAL_STATE:
        src = prefix.with_name(prefix.name + FILES[name])
        if src.exists():
            shutil.copyfile(src, study / name)
    print(f"restored {study} from {prefix}* (finished runs are kept, unfinished ones start over)")
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--restore":
        return restore(Path(argv[1]), Path(argv[2]))
    return publish(Path(argv[0]), Path(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
