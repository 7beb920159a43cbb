"""Bounds on what producers and the drop supply: hostile data, never trusted.

A producer holds INSERT on ``recording_intake`` and nothing else; anyone who can write
into the SFTP drop chooses its file names; an import file is whatever an operator was
handed.  Their values are data (DESIGN.md, "Trust boundaries"): bounded in length,
dates within a sane window, drop paths confined to the drop, and escaped when printed.
The intake and the import check them as they come in (a bad row is rejected with its
reason); the drop checks paths again wherever it opens, moves or deletes a file.

Pure: no I/O, imported by the ledger (intake, import), the drop and the CLI alike.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = [
    "EARLIEST_RECORDED_AT",
    "FUTURE_SLACK",
    "MAX_DROP_NAME_BYTES",
    "MAX_DROP_PATH_CHARS",
    "MAX_ID_CHARS",
    "MAX_PRODUCER_CHARS",
    "MAX_TIMESTAMP_CHARS",
    "NamePattern",
    "compile_name_pattern",
    "drop_path_problem",
    "escape_name",
    "inside_drop",
    "printable",
    "recorded_at_problem",
]

#: A uuid is 36 characters; a longer value is rejected before any pattern looks at it.
MAX_ID_CHARS = 64
#: ``producer`` names a system ("pbx-7", "crm"): free text, but a name, not a document.
MAX_PRODUCER_CHARS = 200
#: ISO 8601 with microseconds and an offset is 32 characters.
MAX_TIMESTAMP_CHARS = 64
#: A drop path (``sftp:PATH``, a sweep's path): PATH_MAX-like, far below the custody log's
#: 65,535-byte entries.
MAX_DROP_PATH_CHARS = 1024
#: A drop file's base name, in bytes as the server sends it (Linux's NAME_MAX).
MAX_DROP_NAME_BYTES = 255

#: No recording is older than the archive's business (and a retention period started at
#: year 1 ends before it began: archived with no Object Lock).
EARLIEST_RECORDED_AT = datetime(1990, 1, 1, tzinfo=UTC)
#: A recorded_at further in the future than this is a producer's mistake, not a date to
#: start a retention period at.
FUTURE_SLACK = timedelta(days=1)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def recorded_at_problem(moment: datetime, now: datetime) -> str | None:
    """Why ``moment`` (aware) is not a recording date to trust, or None."""
    if moment < EARLIEST_RECORDED_AT:
        return f"is before {EARLIEST_RECORDED_AT:%Y-%m-%d}"
    if moment > now + FUTURE_SLACK:
        return "is in the future"
    return None


def drop_path_problem(path: str, *, relative: bool = False) -> str | None:
    """Why ``path`` can never name a file inside a drop, or None.

    Syntax only (the drop's root is not needed): too long, a control character, a
    ``..`` or empty component, not normalised — and with ``relative``, absolute.
    :func:`inside_drop` is the full check against a root.
    """
    if not path:
        return "is empty"
    if len(path) > MAX_DROP_PATH_CHARS:
        return f"is longer than {MAX_DROP_PATH_CHARS} characters"
    if _CONTROL.search(path):
        return "contains a control character"
    if relative and path.startswith("/"):
        return "is absolute (name the file relative to the drop)"
    parts = path.split("/")
    if ".." in parts:
        return "contains '..'"
    inner = parts[1:] if path.startswith("/") else parts
    if any(part in ("", ".") for part in inner) or posixpath.normpath(path) != path:
        return "is not a normalised path"
    return None


def inside_drop(root: str, path: str) -> str | None:
    """The server path of ``path`` if it lies inside the drop at ``root``, else None.

    ``root`` is the drop's normalised directory (``.`` for the login directory, a
    relative or an absolute path).  ``path`` must pass :func:`drop_path_problem`; an
    absolute one must lie below an absolute root; a relative one is below the root
    already (a sweep's path: it starts with the root) or is taken relative to it.
    Symbolic links on the server are the caller's to refuse (``lstat``).
    """
    if drop_path_problem(path) is not None or root in ("", ".."):
        return None
    if path.startswith("/"):
        if not root.startswith("/"):
            return None
        base = root.rstrip("/")
        return path if path == root or path.startswith(base + "/") else None
    if root == ".":
        return path
    if not root.startswith("/") and (path == root or path.startswith(root.rstrip("/") + "/")):
        return path
    return posixpath.join(root, path)


def printable(text: str) -> str:
    """``text`` with every control and other unprintable character escaped (``\\x1b``
    for ESC, ``\\u2028`` …): a producer's or a file name's ANSI sequences and line
    breaks never reach an operator's terminal raw."""
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def escape_name(raw: bytes) -> str:
    """A name that is not UTF-8, printable: undecodable bytes as ``\\xNN``."""
    return printable(raw.decode("utf-8", errors="backslashreplace"))


class NameMatch(Protocol):
    def group(self, name: str, /) -> str | None: ...


class NamePattern(Protocol):
    """A compiled TENIOS_SFTP_PATTERN (an RE2 regex; ``re.Pattern`` fits too)."""

    @property
    def pattern(self) -> str: ...

    @property
    def groupindex(self) -> Mapping[str, int]: ...

    def search(self, text: str, /) -> NameMatch | None: ...


def compile_name_pattern(pattern: str) -> NamePattern:
    """TENIOS_SFTP_PATTERN compiled with RE2 (google-re2): matching takes time linear in
    the name, whatever the pattern, so a crafted file name cannot stall a sweep (Python's
    backtracking ``re`` took minutes on one name with a pattern such as ``(a+)+b``).
    RE2 has no backreferences or lookaround; such a pattern is refused.  ValueError
    says why (the caller names the setting)."""
    import re2  # only where a pattern is compiled: `--help` and the intake never need it

    options = re2.Options()
    options.log_errors = False  # RE2 would print its parse error to stderr as well
    try:
        compiled: NamePattern = re2.compile(pattern, options=options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(
            f"is not a regular expression RE2 accepts ({reason}); backreferences and "
            "lookaround are not supported"
        ) from None
    if "recording_uuid" not in compiled.groupindex:
        raise ValueError("needs a named group (?P<recording_uuid>...)")
    return compiled
