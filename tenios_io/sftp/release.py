"""Releasing a drop file after its archive copy is verified: intent first.

Moving or deleting the customer's file destroys evidence, so the ledger hears of it
before and after (issue 11):

1. ``release_intended`` — which file, the after-action, and the SHA-256 and size it
   may release — is written (with a ``source_releases`` row) *before* the file is
   touched;
2. the drop releases the file only if it is proven to hold the archived bytes: the
   same size and mtime as when this run hashed it, or hashed again and equal
   (:meth:`~tenios_io.sftp.drop.SftpDrop.release`);
3. ``released_from_source`` (or ``release_refused`` when the proof failed) is written
   and the row removed, in one transaction.  A release that fails
   (``release_failed``) keeps its row.

A run killed, or a database gone, between 1 and 3 leaves the row.  The next sweep
(:func:`finish_interrupted`) finishes the release if the file is still there, or
records it as released with a note when the file is gone: the intent proves that it
was this archiver that moved or deleted it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from tenios_io import crashpoints
from tenios_io.exceptions import LedgerUnavailable, SourceOutsideDrop, SourceUnavailable
from tenios_io.ledger import Ledger
from tenios_io.ledger.releases import ReleaseIntent
from tenios_io.recording.source import Fetched, FetchRequest, RecordingSource
from tenios_io.sftp.source import DropSource

if TYPE_CHECKING:
    from tenios_io.sftp.drop import SftpDrop

log = logging.getLogger(__name__)

RELEASED = "released_from_source"
REFUSED = "release_refused"
FAILED = "release_failed"
UNRECORDED = "unrecorded"
"""Not an event: the ledger could not be written; a later sweep settles the release."""
GONE_NOTE = (
    "an earlier run recorded its intent to release this file and was interrupted; the "
    "file was no longer in the drop when the sweep looked"
)
FINISHED_NOTE = "finished a release an earlier run intended and did not complete"


def release_archived(
    ledger: Ledger,
    source: RecordingSource,
    request: FetchRequest,
    fetched: Fetched,
    *,
    sha256: str,
) -> str | None:
    """After the archive copy is verified: release the source copy (SFTP), intent
    first; returns the custody event written, if any.  A failure never un-archives:
    the next sweep tries again."""
    if not isinstance(source, DropSource):
        return _release_plain(ledger, source, request, fetched)
    if not request.source_path:
        return None
    try:
        drop = source.release_drop()
    except SourceUnavailable as exc:
        ledger.note_release(
            request.recording_uuid, FAILED, {"source": fetched.source, "error": str(exc)}
        )
        return FAILED
    if drop.after_action == "keep":
        return None
    intent = ReleaseIntent(
        recording_uuid=request.recording_uuid,
        path=request.source_path,
        action=drop.after_action,
        sha256=sha256,
        size_bytes=fetched.size,
        source_mtime=fetched.source_mtime,
    )
    return release(ledger, drop, intent, by="run")


def release(
    ledger: Ledger,
    drop: SftpDrop,
    intent: ReleaseIntent,
    *,
    by: str,
    actor: str | None = None,
    intended: bool = False,
) -> str:
    """Carry out one release (steps 1-3 of the module docstring); returns the event
    that ended it.  ``intended``: the intent is already recorded (a sweep finishing an
    interrupted release)."""
    if not intended:
        try:
            ledger.intend_release(intent, actor=actor)
        except LedgerUnavailable as exc:
            # No intent, no release: the file stays; a later sweep releases it.
            log.warning(
                "%s stays in the drop: its release intent was not recorded (%s)", intent.path, exc
            )
            return UNRECORDED
    crashpoints.reached("after_release_intent")
    try:
        action = drop.release(
            intent.path,
            expected_size=intent.size_bytes,
            expected_sha256=intent.sha256,
            expected_mtime=intent.source_mtime,
        )
    except SourceUnavailable as exc:
        with contextlib.suppress(LedgerUnavailable):  # the intent stays either way
            ledger.note_release(
                intent.recording_uuid,
                FAILED,
                {"source": intent.source, "error": str(exc), "by": by},
                actor=actor,
            )
        return FAILED
    crashpoints.reached("after_release_action")
    event = REFUSED if action.startswith("kept") else RELEASED
    details: dict[str, Any] = {
        "source": intent.source,
        "action": action,
        "sha256": intent.sha256,
        "size": intent.size_bytes,
        "by": by,
    }
    if intended:
        details["note"] = FINISHED_NOTE
    try:
        ledger.finish_release(intent, event, details, actor=actor)
    except LedgerUnavailable as exc:
        # The intent stays recorded: the next sweep records what this release did.
        log.warning("release of %s (%s) not yet recorded: %s", intent.path, action, exc)
        return UNRECORDED
    return event


def finish_interrupted(ledger: Ledger, drop: SftpDrop, *, actor: str) -> dict[str, str]:
    """The sweep's part: every release whose intent is recorded but whose outcome is
    not is finished (the file is still there) or recorded as released with a note (the
    file is gone).  Returns the event each one ended with, by recording_uuid."""
    ended: dict[str, str] = {}
    for intent in ledger.releases_in_flight():
        if _present_or_outside(drop, intent.path):
            # A path outside the drop (recorded before paths were confined) is refused
            # by the drop itself: ``release_refused``, the file is never touched.
            event = release(ledger, drop, intent, by="sweep", actor=actor, intended=True)
        else:
            details: dict[str, Any] = {
                "source": intent.source,
                "action": "already gone",
                "sha256": intent.sha256,
                "size": intent.size_bytes,
                "by": "sweep",
                "note": GONE_NOTE,
            }
            if intent.action == drop.after_action and intent.action.startswith("move:"):
                target = drop.move_target(intent.path)
                details["move_target"] = target
                details["found_at_move_target"] = drop.exists(target)
            event = RELEASED
            ledger.finish_release(intent, event, details, actor=actor)
        log.info("interrupted release of %s: %s", intent.path, event)
        ended[intent.recording_uuid] = event
    return ended


def _present_or_outside(drop: SftpDrop, path: str) -> bool:
    """Whether the file is there to release — or lies outside the drop, which the
    drop's release refuses (recorded as ``release_refused``)."""
    if not drop.contains(path):
        return True
    try:
        return drop.exists(path)
    except SourceOutsideDrop:  # a symbolic link in its directories leads out
        return True


def _release_plain(
    ledger: Ledger, source: RecordingSource, request: FetchRequest, fetched: Fetched
) -> str | None:
    """A source without a drop: its own after-action, recorded after."""
    try:
        action = source.after_archived(request, fetched)
    except SourceUnavailable as exc:
        ledger.annotate(
            request.recording_uuid, FAILED, {"source": fetched.source, "error": str(exc)}
        )
        return FAILED
    if not action:
        return None
    ledger.annotate(request.recording_uuid, RELEASED, {"source": fetched.source, "action": action})
    return RELEASED


__all__ = ["finish_interrupted", "release", "release_archived"]
