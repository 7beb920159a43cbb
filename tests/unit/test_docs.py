"""The README and docs/ stay true: links resolve, documented commands exist, and the
README stays a front door (issue 22: at most ~400 lines, guides live in docs/)."""

from __future__ import annotations

import re
import shlex
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from tenios_io.cli import app

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)")
SHELL = {"sh", "bash", "shell", "console"}
STOP = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"}
CRON_FIELD = re.compile(r"^[\d*/,-]+$")


def prose_lines(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks."""
    fence: str | None = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if match and (fence is None or match.group(1).startswith(fence)):
            fence = match.group(1)[:3] if fence is None else None
            continue
        if fence is None:
            yield line


def code_blocks(text: str) -> Iterator[tuple[str, list[str]]]:
    """(info string, lines) of every fenced code block."""
    fence: str | None = None
    info, lines = "", list[str]()
    for line in text.splitlines():
        match = FENCE.match(line)
        if match and fence is None:
            fence, info, lines = match.group(1)[:3], match.group(2), []
        elif match and match.group(1).startswith(fence or "-"):
            yield info, lines
            fence = None
        elif fence is not None:
            lines.append(line)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: Counter[str] = Counter()
    found = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def relative_links() -> Iterator[tuple[Path, str]]:
    for page in PAGES:
        for line in prose_lines(page.read_text(encoding="utf-8")):
            for target in LINK.findall(line):
                if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, mailto: ...
                    yield page, target


def test_pages_have_links_to_check() -> None:
    targets = [target for _, target in relative_links()]
    assert "docs/operations.md#monitoring" in targets
    assert slug("Stopping a run: Ctrl-C and SIGTERM") == "stopping-a-run-ctrl-c-and-sigterm"
    assert slug("Verify it yourself (no `tenios-archive` needed)") == (
        "verify-it-yourself-no-tenios-archive-needed"
    )


@pytest.mark.parametrize(
    ("page", "target"),
    [pytest.param(p, t, id=f"{p.name}:{t}") for p, t in relative_links()],
)
def test_relative_link_resolves(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.exists(), f"{page.name} links to {target}: no such file"
    if anchor:
        assert file.suffix == ".md", f"{page.name} links to an anchor in {file.name}"
        assert anchor in anchors(file), f"{page.name} links to {target}: no such heading"


def documented_command_lines() -> Iterator[tuple[Path, list[str]]]:
    """Every `tenios-archive ...` invocation in a shell block, as its arguments."""
    for page in PAGES:
        for info, lines in code_blocks(page.read_text(encoding="utf-8")):
            if info not in SHELL:
                continue
            for line in "\n".join(lines).replace("\\\n", " ").splitlines():
                tokens = shlex.split(line, comments=True)
                segment: list[str] = []
                for token in [*tokens, ";"]:
                    if token not in STOP:
                        segment.append(token)
                        continue
                    args = invocation(segment)
                    if args is not None:
                        yield page, args
                    segment = []


def invocation(tokens: list[str]) -> list[str] | None:
    """The arguments after `tenios-archive` when it is the command of this segment."""
    if len(tokens) > 6 and all(CRON_FIELD.match(t) for t in tokens[:5]):
        tokens = tokens[6:]  # a crontab line: five time fields and the user
    while tokens and re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]):
        tokens = tokens[1:]
    if not tokens or tokens[0] != "tenios-archive":
        return None
    return tokens[1:]


def options_of(command: Any) -> dict[str, Any]:
    known = {"--help": None, "-h": None}
    for param in command.params:
        if param.param_type_name == "option":
            for name in (*param.opts, *param.secondary_opts):
                known[name] = param
    return known


def check_against_cli(args: list[str]) -> list[str]:
    """Problems with one documented invocation, checked against the Click tree."""
    root = typer.main.get_command(app)
    root_options = options_of(root)
    command, path, problems = root, ["tenios-archive"], []
    tokens = [t.strip("[]") for t in args if t.strip("[]") not in ("", "...", "…")]
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.startswith("-") and token != "-":
            name, has_value, _ = token.partition("=")
            known = {**root_options, **options_of(command)}
            if name not in known:
                problems.append(f"{' '.join(path)} has no option {name}")
                continue
            param = known[name]
            takes_value = param is not None and not (param.is_flag or param.count)
            if takes_value and not has_value:
                index += 1
        elif hasattr(command, "list_commands"):
            sub = command.get_command(typer.Context(command), token)  # type: ignore[attr-defined]
            if sub is None:
                problems.append(f"{' '.join(path)} has no command {token!r}")
                break
            command, path = sub, [*path, token]
    if hasattr(command, "list_commands") and "--help" not in tokens and not problems:
        problems.append(f"{' '.join(path)} names a group, not a command")
    return problems


def test_docs_show_commands_to_check() -> None:
    commands = [" ".join(args[:2]) for _, args in documented_command_lines()]
    for expected in ("db upgrade", "run nightly", "audit verify-bucket", "ledger stats"):
        assert expected in commands


@pytest.mark.parametrize(
    ("page", "args"),
    [pytest.param(p, a, id=f"{p.name}:{' '.join(a)[:60]}") for p, a in documented_command_lines()],
)
def test_documented_command_exists(page: Path, args: list[str]) -> None:
    assert check_against_cli(args) == []


def test_the_command_check_catches_mistakes() -> None:
    assert check_against_cli(["run", "nightly", "--limit", "5"]) == []
    assert check_against_cli(["--config", "f.toml", "ledger", "list", "--config=g"]) == []
    assert check_against_cli(["run", "nightly", "--in-the-air", "4"]) == [
        "tenios-archive run nightly has no option --in-the-air"
    ]
    assert check_against_cli(["ledger", "frobnicate"]) == [
        "tenios-archive ledger has no command 'frobnicate'"
    ]
    assert check_against_cli(["audit"]) == ["tenios-archive audit names a group, not a command"]


def test_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 400, f"README.md has {lines} lines: move guides and tables to docs/"


MD_REFERENCE = re.compile(r"\b([\w./-]+\.md)\b")


@pytest.mark.parametrize("path", ["prefect.yaml", "Makefile", "pyproject.toml"])
def test_config_files_name_only_pages_in_the_repository(path: str) -> None:
    """Issue 27: prefect.yaml pointed at a DESIGN.md that is not in the repository."""
    text = (ROOT / path).read_text(encoding="utf-8")
    named = set(MD_REFERENCE.findall(text))
    missing = sorted(n for n in named if not (ROOT / n).is_file())
    assert missing == [], f"{path} names pages the repository does not have: {missing}"
