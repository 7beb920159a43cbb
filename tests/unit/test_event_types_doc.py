"""docs/compliance.md's table of event types is the code's: it names every custody event
type the code can write, and nothing else (issue 23 item 5: the format is the
documentation, and cannot drift from it).

The event types are read from the source with ``ast``, at the places events are made:
``NewEvent(uuid, EVENT, …)``, ``Ledger.annotate / note_release / finish_release(…, EVENT,
…)``, the ``(EVENT, details)`` pairs of the archiver's and the work queue's leased
writes, the ``(uuid, EVENT, actor, …)`` rows an import sequences, and the states
``failed_write`` may end in.  EVENT may be a string, a module constant, a conditional of
the two, or ``State.X.value``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tenios_io.ledger.states import State

ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "tenios_io"
DOC = ROOT / "docs" / "compliance.md"

_CALLS = {"NewEvent": 1, "annotate": 1, "note_release": 1, "finish_release": 1}
# Modules whose leased writes carry events as (EVENT, details) pairs.
_PAIRS = {"ledger/workqueue.py", "run/archiver.py"}
_NAME = re.compile(r"^[a-z][a-z_]*$")


def _constants() -> dict[str, set[str]]:
    """Module-level ``NAME = "text"`` of every module (event names are unique among them)."""
    found: dict[str, set[str]] = {}
    for path in CODE.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                found.setdefault(node.targets[0].id, {node.value.value})
    return found


def _names(node: ast.expr, known: dict[str, set[str]]) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Name):
        return known.get(node.id, set())
    if isinstance(node, ast.IfExp):
        return _names(node.body, known) | _names(node.orelse, known)
    if (
        isinstance(node, ast.Attribute)
        and node.attr == "value"
        and isinstance(node.value, ast.Attribute)
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "State"
    ):
        return {State[node.value.attr].value}
    return set()


def _with_locals(tree: ast.Module, constants: dict[str, set[str]]) -> dict[str, set[str]]:
    """The constants plus what a local ``event = …`` (a constant, or a conditional of
    them) takes in this module: such an ``event`` is handed on to the ledger."""
    known = dict(constants)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "event"
        ):
            known["event"] = known.get("event", set()) | _names(node.value, constants)
    return known


def written_event_types() -> set[str]:
    constants = _constants()
    found: set[str] = set()
    for path in CODE.rglob("*.py"):
        relative = path.relative_to(CODE).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        known = _with_locals(tree, constants)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                position = _CALLS.get(name)
                if position is not None and len(node.args) > position:
                    found |= _names(node.args[position], known)
            elif isinstance(node, ast.Tuple):
                if (
                    relative in _PAIRS
                    and len(node.elts) == 2
                    and isinstance(node.elts[1], ast.Dict | ast.Call | ast.Name)
                ) or (relative == "ledger/registration.py" and len(node.elts) == 5):
                    event = node.elts[0] if len(node.elts) == 2 else node.elts[1]
                    found |= {n for n in _names(event, constants) if _NAME.match(n)}
            elif isinstance(node, ast.FunctionDef) and node.name == "failed_write":
                for inner in ast.walk(node):
                    if (
                        isinstance(inner, ast.Attribute)
                        and isinstance(inner.value, ast.Name)
                        and inner.value.id == "State"
                    ):
                        found.add(State[inner.attr].value)
    return found


def documented_event_types() -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### Event types and their details") :]
    section = section[: section.index("\n### ", 10)]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


def test_the_extraction_finds_the_event_types_it_should() -> None:
    written = written_event_types()
    # one of each way an event is made (a guard against the extraction going blind)
    assert {
        "registered",  # an import's sequenced rows
        "claimed",  # NewEvent
        "archived",  # a leased write's pair
        "missing",  # failed_write's states
        "legal_hold",  # a conditional in annotate
        "release_refused",  # a module constant
        "checkpoint",  # a module constant in NewEvent
        "key_rotated",  # a module constant imported into NewEvent
    } <= written
    assert len(written) >= 25


def test_compliance_md_documents_every_event_type_the_code_writes() -> None:
    written, documented = written_event_types(), documented_event_types()
    assert written - documented == set(), "add these to docs/compliance.md's event table"
    assert documented - written == set(), "the code writes no such event"
