"""When the run itself cannot work: stop it, instead of failing the backlog one by one.

:mod:`tenios_io.run.retry` judges one recording's failure.  Some errors say nothing about
the recording and everything about the run: TENIOS refusing the access key, a
``TENIOS_API_URL`` that is not the API, S3 refusing the credentials or missing the
bucket, the SFTP drop refusing the login or its host key unknown, the ledger gone,
TENIOS unreachable (refused, DNS, TLS) once the client's retries are spent, a spool
directory that cannot be written (disk full, gone, read-only), S3 failing every
request for longer than :data:`STORE_OUTAGE_SECONDS`.  Judged per recording they
would spend every claimed recording's attempts (or fail it) until the run ran out of
work.

A long run of 404s is run-wide only when the canary says so: :class:`RunGuard` asks
its canary (tenios_io/run/canary.py: one recording known to exist at TENIOS, asked for
again); when that answers, the 404s mean "not ready yet" — those recordings are backed
off as usual and the run goes on.  Without a canary the streak stops the run, and the
message says no canary was there to ask.

Here, in one place, such errors trip the run's :class:`RunGuard`: the recording that
met the error and every claim not yet worked are released back to ``pending``
without spending an attempt, the run loop claims nothing more, one ``run_stopped``
custody event records the cause, and the run exits 2 (configuration / credentials)
or 1 with a message naming the cause and what to do.  Nothing in the backlog
changes state because of them.

An SFTP drop that is down is *not* run-wide while another source can serve: the
pipeline tries it once per run and then fetches from the API (run/pipeline.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tenios_io.config import ENV_PREFIX
from tenios_io.custody.chain import NewEvent
from tenios_io.exceptions import (
    AccessDenied,
    ApiUnreachable,
    ConfigError,
    HostKeyError,
    LedgerUnavailable,
    RecordingNotFound,
    SpoolUnusable,
    StoreAccessDenied,
    StoreUnavailable,
    WrongApiUrl,
)
from tenios_io.ledger import Ledger

#: Settings whose ConfigError means the SFTP drop refused this archiver's login.
SFTP_LOGIN_SETTINGS = frozenset({f"{ENV_PREFIX}SFTP_KEY_FILE", f"{ENV_PREFIX}SFTP_PASSWORD"})

#: Consecutive 404s, with no success in between, that stop a run (a wrong URL whose
#: 404s look like "not ready yet").
NOT_FOUND_STREAK = 50

#: S3 failing every request (after boto3's own retries) for this long, with no
#: success in between, stops the run.  Until then a recording that meets the failure
#: is held back this long, once per run, without spending an attempt.
STORE_OUTAGE_SECONDS = 60.0

EXIT_CONFIG = 2
EXIT_PROBLEMS = 1
#: Recordings a stop message names at most.
_NAMED = 5


@dataclass(frozen=True)
class RunStop:
    """Why a run stopped early, and what the operator should do."""

    cause: str
    advice: str
    exit_code: int
    error: str
    """The error that tripped it (type: message), secrets already kept out by its maker."""

    @property
    def message(self) -> str:
        """One line for the console: cause, what to do, that nothing was failed (when
        every claim was given back: :meth:`message_for` says which were not)."""
        return self.message_for([], None)

    def message_for(
        self,
        unreleased: Sequence[str],
        lease_ends_by: datetime | None,
        released: int | None = None,
    ) -> str:
        """The console line once the run knows which claims it could not give back
        (the ledger did not take them): those stay ``in_progress`` until their lease
        ends, by ``lease_ends_by`` at the latest, and the next run takes them over.
        ``released``: how many claims were given back (said when known)."""
        head = f"run stopped: {self.cause}: {self.error}. {self.advice}. "
        if not unreleased:
            if released is not None:
                return head + f"{released} claim(s) released to pending, no attempts spent"
            return head + "Claimed recordings were released to pending without spending an attempt"
        named = ", ".join(unreleased[:_NAMED]) + (" ..." if len(unreleased) > _NAMED else "")
        by = f" (by {lease_ends_by:%Y-%m-%d %H:%M:%S} UTC at the latest)" if lease_ends_by else ""
        return (
            head + f"{len(unreleased)} claim(s) could not be released (the ledger did not "
            f"answer): {named}; they stay in_progress until their lease ends{by}, then the "
            "next run takes them over. The other claims were released to pending without "
            "spending an attempt"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "cause": self.cause,
            "advice": self.advice,
            "exit_code": self.exit_code,
            "error": self.error,
        }


def run_wide(exc: BaseException) -> RunStop | None:
    """The RunStop ``exc`` calls for, or None when it concerns only its recording."""
    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, AccessDenied):
        return RunStop(
            "TENIOS refused the access key",
            "Set TENIOS_ACCESS_KEY to a valid key (and check TENIOS's IP allow-list)",
            EXIT_CONFIG,
            error,
        )
    if isinstance(exc, WrongApiUrl):
        return RunStop(
            "TENIOS_API_URL does not point at the TENIOS API",
            "Fix TENIOS_API_URL (e.g. https://api.tenios.com)",
            EXIT_CONFIG,
            error,
        )
    if isinstance(exc, StoreAccessDenied):
        return RunStop(
            "the archive bucket cannot be used",
            "Fix TENIOS_S3_BUCKET or the AWS credentials / policy (they may have expired)",
            EXIT_CONFIG,
            error,
        )
    if isinstance(exc, HostKeyError) or (
        isinstance(exc, ConfigError) and exc.variable in SFTP_LOGIN_SETTINGS
    ):
        return RunStop(
            "the SFTP drop refused this archiver",
            "Fix TENIOS_SFTP_KEY_FILE / TENIOS_SFTP_PASSWORD (or TENIOS_SFTP_KNOWN_HOSTS after "
            "checking the server's new host key)",
            EXIT_CONFIG,
            error,
        )
    if isinstance(exc, ApiUnreachable):
        return RunStop(
            f"TENIOS unreachable at {exc.url}",
            "Check TENIOS_API_URL and the network to it (DNS, firewall, proxy, TLS "
            "certificates), then run again",
            EXIT_PROBLEMS,
            exc.reason,
        )
    if isinstance(exc, SpoolUnusable):
        return RunStop(
            "the spool directory cannot be written",
            "Free space there or point TENIOS_SPOOL_DIR at a writable directory, then run again",
            EXIT_PROBLEMS,
            error,
        )
    if isinstance(exc, LedgerUnavailable):
        return RunStop(
            "the ledger database is unavailable",
            "Check TENIOS_DATABASE_URL and the database server, then run again",
            EXIT_PROBLEMS,
            error,
        )
    return None


def record_stop(
    ledger: Ledger,
    stop: RunStop,
    *,
    released: int,
    unreleased: Sequence[str] = (),
    lease_ends_by: datetime | None = None,
) -> str | None:
    """The run's one ``run_stopped`` custody event (None when the ledger is the cause
    and cannot take it: the console and the run's summary still say it)."""
    details = {
        **stop.to_dict(),
        "message": stop.message_for(unreleased, lease_ends_by, released),
        "released": released,
        "unreleased": list(unreleased),
    }
    try:
        [digest] = ledger.append_events([NewEvent(None, "run_stopped", details)])
    except LedgerUnavailable:
        return None
    return digest


@dataclass(frozen=True)
class CanaryAnswer:
    """What the canary said: ``recording_uuid`` (None: no recording to ask about) was
    ``found`` at TENIOS, or not (``error``: why the question failed, if it did)."""

    recording_uuid: str | None
    found: bool
    error: str = ""


Canary = Callable[[str | None], CanaryAnswer]
"""Asks TENIOS for one recording known to exist there (tenios_io/run/canary.py), given
the one this run last archived from the API (None: none yet)."""


@dataclass
class _StoreOutage:
    """S3 failing since ``since`` (the guard's clock), with no success in between."""

    since: float
    held: set[str] = field(default_factory=set)


class RunGuard:
    """Shared by every batch of one run (thread-safe): trips once, on the first
    run-wide error, on ``not_found_streak`` consecutive 404s with no success that the
    ``canary`` confirms (or with no canary to ask), or on S3 failing every request for
    ``store_outage_seconds``.  ``notes``: what the guard saw that did not stop the run,
    for the summary."""

    def __init__(
        self,
        not_found_streak: int = NOT_FOUND_STREAK,
        *,
        canary: Canary | None = None,
        store_outage_seconds: float = STORE_OUTAGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.not_found_streak = not_found_streak
        self.canary = canary
        self.store_outage_seconds = store_outage_seconds
        self.clock = clock
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self._canary_lock = threading.Lock()
        self._stop: RunStop | None = None
        self._not_found = 0
        self._outage: _StoreOutage | None = None
        self._from_api: str | None = None

    @property
    def stopped(self) -> RunStop | None:
        """Why the run stopped, once it did."""
        return self._stop

    def trip(self, stop: RunStop) -> RunStop:
        """Stop the run (the first cause wins); returns the cause in force."""
        with self._lock:
            if self._stop is None:
                self._stop = stop
            return self._stop

    def judge(self, exc: BaseException) -> RunStop | None:
        """Trip on a run-wide error, a confirmed 404 streak or a long enough S3 outage;
        None otherwise."""
        stop = run_wide(exc)
        if stop is not None:
            return self.trip(stop)
        if isinstance(exc, RecordingNotFound):
            return self._not_found_seen(exc)
        if isinstance(exc, StoreUnavailable):
            return self._store_failed(exc)
        return None

    def hold_back(self, recording_uuid: str, exc: BaseException) -> float | None:
        """Seconds to hold ``recording_uuid`` back without spending its attempt, while
        S3 fails every request and the run has not stopped for it yet (once per
        recording and run: a recording that meets it again is judged as its own
        failure); None: judge it as its own failure."""
        if not isinstance(exc, StoreUnavailable):
            return None
        with self._lock:
            outage = self._outage
            if outage is None or recording_uuid in outage.held:
                return None
            outage.held.add(recording_uuid)
        return self.store_outage_seconds

    def succeeded(self, recording_uuid: str | None = None, source: str | None = None) -> None:
        """A recording was archived (from ``source``): the 404 streak starts over, S3
        answers; one archived from the API is the canary's first choice."""
        with self._lock:
            self._not_found = 0
            self._outage = None
            if source == "api" and recording_uuid is not None:
                self._from_api = recording_uuid

    def _store_failed(self, exc: StoreUnavailable) -> RunStop | None:
        now = self.clock()
        with self._lock:
            if self._outage is None:
                self._outage = _StoreOutage(now)
            failing = now - self._outage.since
        if failing < self.store_outage_seconds:
            return None
        return self.trip(
            RunStop(
                f"S3 failed every request for {failing:.0f} s",
                "Check the S3 endpoint (AWS_ENDPOINT_URL_S3), the network to it and the "
                "service's health, then run again",
                EXIT_PROBLEMS,
                f"{type(exc).__name__}: {exc}",
            )
        )

    def _not_found_seen(self, exc: RecordingNotFound) -> RunStop | None:
        with self._lock:
            self._not_found += 1
            streak = self._not_found
        if streak < self.not_found_streak:
            return None
        # One thread asks the canary; the others wait for its answer (the streak is
        # reset when it answers, so they see a short streak and go on).
        with self._canary_lock:
            with self._lock:
                streak = self._not_found
            if streak < self.not_found_streak or self._stop is not None:
                return self._stop
            recent = self._from_api
            answer = self.canary(recent) if self.canary is not None else CanaryAnswer(None, False)
            if answer.found:
                with self._lock:
                    self._not_found = 0
                    self.notes.append(
                        f"{streak} recordings in a row answered 404; {answer.recording_uuid} "
                        "(archived from TENIOS before) still answers, so they are not ready "
                        "yet: backed off, tried again later"
                    )
                return None
        error = f"{type(exc).__name__}: {exc}"
        if answer.recording_uuid is None:
            cause = (
                f"{streak} recordings in a row answered 404 and none was found (no recording "
                "archived from the API yet to check TENIOS with)"
            )
        elif answer.error:
            cause = (
                f"{streak} recordings in a row answered 404, and asking TENIOS for "
                f"{answer.recording_uuid} (archived from it before) failed too: {answer.error}"
            )
        else:
            cause = (
                f"{streak} recordings in a row answered 404, and so did "
                f"{answer.recording_uuid}, archived from TENIOS before"
            )
        return self.trip(
            RunStop(
                cause,
                "Check TENIOS_API_URL and that these recordings exist at TENIOS; "
                "if they are simply not ready yet, run again later",
                EXIT_PROBLEMS,
                error,
            )
        )


__all__ = [
    "NOT_FOUND_STREAK",
    "STORE_OUTAGE_SECONDS",
    "Canary",
    "CanaryAnswer",
    "RunGuard",
    "RunStop",
    "record_stop",
    "run_wide",
]
