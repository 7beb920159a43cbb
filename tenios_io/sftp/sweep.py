"""The SFTP sweep of a run: register what the drop holds, finish pending releases.

Runs before archiving.  Each file name is matched to the ledger's rows first
(:mod:`tenios_io.sftp.naming`): a name holding a known recording_uuid belongs to that
row, a known call_uuid is never taken for a recording, and a name with several
unknown UUIDs is left alone and reported as ambiguous — recorded once per sweep as a
``drop_files_ambiguous`` custody event, which the report lists.  New drop files are
registered with their path as source (a recording also known through the API stays
one row and learns its path).  Releases an earlier run intended and did not finish
(it was killed, or the database went away, between ``release_intended`` and
``released_from_source``) are finished, or recorded when the file is already gone
(:func:`tenios_io.sftp.release.finish_interrupted`).  A drop file whose recording is
already archived but was never released (the release failed, or the recording was
fetched from the API) is released now, intent first, and only if its bytes are
hashed again and are the archived ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tenios_io.ledger import Ledger, NewEvent, NewRecording, State
from tenios_io.ledger.releases import ReleaseIntent
from tenios_io.progress import NO_PROGRESS, ProgressListener
from tenios_io.sftp import release as releasing
from tenios_io.sftp.naming import AMBIGUOUS_EVENT, KnownIds
from tenios_io.sftp.release import FAILED, RELEASED, UNRECORDED, finish_interrupted
from tenios_io.untrusted import recorded_at_problem

if TYPE_CHECKING:
    from tenios_io.sftp.drop import SftpDrop

_MAX_LISTED = 200  # paths per event
#: A recording waiting for its settling drop file is held this much past the time the
#: file settles, so that a run's second look at the drop (run/session.py) comes first
#: and the recording is then fetched from the drop, not from the API.
HOLD_MARGIN_SECONDS = 2.0


@dataclass
class SweepReport:
    """What a sweep found and did."""

    ready: int = 0
    registered: int = 0
    source_found: int = 0
    unsettled: int = 0
    unmatched: int = 0
    duplicates: int = 0
    ambiguous: int = 0
    unavailable: str | None = None
    """Why the drop could not be swept in this run (it is down), if it could not."""
    incomplete: int = 0
    """Settled files whose container is not whole (counted in ``unsettled`` too)."""
    stopped: bool = False
    """A stop request (a signal) ended the sweep early; the next sweep does the rest."""
    released: int = 0
    release_failed: int = 0
    release_refused: int = 0
    interrupted_releases: int = 0
    """Releases an earlier run intended and did not finish, settled by this sweep."""
    unmatched_names: list[str] = field(default_factory=list)
    ambiguous_files: list[tuple[str, str]] = field(default_factory=list)
    """``(path, why)``, the first few."""
    incomplete_files: list[tuple[str, str]] = field(default_factory=list)
    """``(path, why)``, the first few."""
    skipped: int = 0
    """Entries whose names cannot be read safely (not UTF-8, too long): left alone."""
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    """``(name with its bytes escaped, why)``, the first few."""
    settling: int = 0
    """Files (counted in ``unsettled`` too) that settle in ``settle_wait_seconds`` at
    the latest if they stay as they are: a run looks again then when that is soon."""
    settle_wait_seconds: float | None = None
    waiting_for_drop: int = 0
    """Recordings the ledger knew whose file is among them: held until it settles (not
    fetched from the API meanwhile, no attempt spent)."""
    settling_files: list[str] = field(default_factory=list)
    """The first few settling paths."""

    def to_dict(self) -> dict[str, object]:
        lists = (
            "unmatched_names",
            "ambiguous_files",
            "incomplete_files",
            "skipped_files",
            "settling_files",
        )
        out: dict[str, object] = {k: v for k, v in self.__dict__.items() if k not in lists}
        out["ambiguous_files"] = [list(item) for item in self.ambiguous_files]
        out["incomplete_files"] = [list(item) for item in self.incomplete_files]
        out["skipped_files"] = [list(item) for item in self.skipped_files]
        out["settling_files"] = list(self.settling_files)
        return out


def known_ids_of(ledger: Ledger) -> Callable[[Collection[str]], KnownIds]:
    """The sweep's question to the ledger: which UUIDs are known recordings and calls."""

    def known(uuids: Collection[str]) -> KnownIds:
        recordings, calls = ledger.known_ids(uuids)
        return KnownIds(recordings, calls)

    return known


def sweep_drop(
    drop: SftpDrop,
    ledger: Ledger,
    *,
    release: bool,
    actor: str,
    progress: ProgressListener = NO_PROGRESS,
    stop: threading.Event | None = None,
) -> SweepReport:
    """Sweep ``drop``; register new recordings (``progress`` hears how many); release
    archived ones still there.

    ``stop`` (a signal) set meanwhile ends the sweep at the next directory or file:
    what was found settled until then is registered (one transaction), releases
    begun are finished, no new one is begun (``SweepReport.stopped``)."""
    found = drop.sweep(known_ids_of(ledger), sightings=ledger, stop=stop)
    report = SweepReport(
        stopped=found.stopped,
        ready=len(found.ready),
        unsettled=len(found.unsettled),
        unmatched=len(found.unmatched),
        duplicates=len(found.duplicates),
        ambiguous=len(found.ambiguous),
        incomplete=len(found.incomplete),
        unmatched_names=list(found.unmatched[:50]),
        ambiguous_files=list(found.ambiguous[:50]),
        incomplete_files=list(found.incomplete[:50]),
        skipped=len(found.skipped),
        skipped_files=list(found.skipped[:50]),
    )
    if found.ambiguous:
        ledger.append_events(
            [
                NewEvent(
                    None,
                    AMBIGUOUS_EVENT,
                    {
                        "count": len(found.ambiguous),
                        "files": [
                            {"path": path, "why": why}
                            for path, why in found.ambiguous[:_MAX_LISTED]
                        ],
                    },
                )
            ],
            actor=f"{actor}:sftp-sweep",
        )
    result = ledger.register(
        [
            NewRecording(
                f.recording_uuid,
                call_uuid=f.call_uuid,
                recorded_at=_recorded_at(f.mtime),
                source_path=f.path,
            )
            for f in found.ready
        ],
        actor=f"{actor}:sftp-sweep",
    )
    report.registered = len(result.added)
    progress.discovered(len(result.added))
    report.source_found = len(result.source_found)
    if found.settling:
        wait = max(f.seconds_left for f in found.settling)
        report.settling = len(found.settling)
        report.settle_wait_seconds = round(wait, 3)
        report.settling_files = [f.path for f in found.settling[:50]]
        report.waiting_for_drop = ledger.wait_for_drop(
            {f.recording_uuid for f in found.settling}, wait + HOLD_MARGIN_SECONDS
        )
    if not release or report.stopped:
        return report
    interrupted = finish_interrupted(ledger, drop, actor=actor)
    report.interrupted_releases = len(interrupted)
    for event in interrupted.values():
        _count(report, event)
    newly = set(result.added)
    for drop_file in found.ready:
        if stop is not None and stop.is_set():
            report.stopped = True
            break
        if drop_file.recording_uuid in newly or drop_file.recording_uuid in interrupted:
            continue
        rec = ledger.get(drop_file.recording_uuid)
        if (
            rec.state is not State.ARCHIVED
            or rec.source_path != drop_file.path
            or rec.sha256 is None
            or rec.size_bytes is None
        ):
            continue
        intent = ReleaseIntent(
            recording_uuid=rec.recording_uuid,
            path=drop_file.path,
            action=drop.after_action,
            sha256=rec.sha256,
            size_bytes=rec.size_bytes,
            source_mtime=None,  # not the run that hashed it: the bytes are hashed again
        )
        _count(report, releasing.release(ledger, drop, intent, by="sweep", actor=actor))
    return report


def _count(report: SweepReport, event: str) -> None:
    if event == RELEASED:
        report.released += 1
    elif event in (FAILED, UNRECORDED):
        report.release_failed += 1
    else:
        report.release_refused += 1


def _recorded_at(mtime: float) -> datetime | None:
    """A drop file's mtime as its recording date, if it is a sane one (anyone who writes
    into the drop sets it; tenios_io.untrusted): else the discovery date is used."""
    try:
        moment = datetime.fromtimestamp(mtime, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment if recorded_at_problem(moment, datetime.now(UTC)) is None else None
