"""Writing a benchmark's report: `bench/results/<bench>.md`, ending with the one summary line the benchmark prints
last, so figures can be compared run to run."""

from __future__ import annotations

from pathlib import Path


def write_report(path: Path, report: str, summary: str) -> None:
    """Write ``report`` to ``path`` (it must end with ``summary``, its last line), print it, then ``summary``."""
    if report.rstrip("\n").rsplit("\n", 1)[-1] != summary:
        raise ValueError(f"{path.name}: the report must end with its summary line")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report, encoding="utf-8")
    print(report)
    print(summary)
