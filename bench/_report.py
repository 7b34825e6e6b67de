"""Writing a benchmark's report: `bench/results/<bench>.md`, ending with the one summary line the benchmark prints
last, so figures can be compared run to run."""

from __future__ import annotations

import subprocess
from pathlib import Path


def write_report(path: Path, report: str, summary: str) -> None:
    """Write ``report`` to ``path`` (it must end with ``summary``, its last line), print it, then ``summary``."""
    if report.rstrip("\n").rsplit("\n", 1)[-1] != summary:
        raise ValueError(f"{path.name}: the report must end with its summary line")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report, encoding="utf-8")
    print(report)
    print(summary)


def commit_of(root: Path) -> str:
    """The checkout's commit, with "+changes" when its tracked files differ from it (a report names what ran)."""
    out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + ("+changes" if dirty else "")
