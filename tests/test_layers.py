"""The house rule: dependencies point down — gateway → bot → market, and market imports neither."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"market": {"gateway", "bot", "web_widget"}, "bot": {"gateway", "web_widget"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_lower_layers_never_import_higher_ones() -> None:
    offenders = []
    for package, forbidden in FORBIDDEN.items():
        files = list((ROOT / package).rglob("*.py"))
        assert files, package
        for path in files:
            bad = _imports(path) & forbidden
            if bad:
                offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offenders == []


def test_only_the_config_module_reads_the_environment() -> None:
    readers = [str(p.relative_to(ROOT)) for pkg in ("market", "bot", "gateway") for p in (ROOT / pkg).rglob("*.py")
               if "os.environ" in p.read_text(encoding="utf-8") or "getenv(" in p.read_text(encoding="utf-8")]
    # local_services passes the environment on to SeaweedFS (with TMPDIR set); it reads no setting from it.
    assert sorted(readers) == ["gateway/local_services.py", "market/config.py"]


def test_the_architecture_document_shows_the_machine_table_the_code_has() -> None:
    from market.rentals import table_markdown

    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    shown = doc.split("<!-- machine-table -->")[1].split("<!-- /machine-table -->")[0].strip()
    assert shown == table_markdown()


def test_the_rental_conversation_speaks_through_the_engines_voice_only() -> None:
    """bot/flows/rental.py never imports the engine (not even for types), and the gateway never reaches past the
    engine's public hooks into a flow."""
    flow = ROOT / "bot" / "flows" / "rental.py"
    assert "bot.engine" not in flow.read_text(encoding="utf-8")
    for path in (ROOT / "gateway").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert ".desk" not in text and ".rental." not in text, path


def test_every_event_the_machine_writes_has_words_for_each_person() -> None:
    from bot.flows.rental import HANDLED, LABELS, STEP_ORDER
    from market.rentals import EDGES

    written = {e.event for e in EDGES.values() if isinstance(e.event, str)} | {"handed", "received", "in_use"}
    assert written <= HANDLED, written - HANDLED
    assert set(STEP_ORDER) == set(LABELS) <= set(EDGES)  # a button names one of the machine's own actions
    for action, roles in LABELS.items():
        assert set(roles) <= set(EDGES[action].roles), action
