"""When the run itself cannot work: stop it, instead of failing the backlog one by one.

:mod:`tenios_io.run.retry` judges one recording's failure.  Some errors say nothing about
the recording and everything about the run: TENIOS refusing the access key, a
``TENIOS_API_URL`` that is not the API, S3 refusing the credentials or missing the
bucket, the SFTP drop refusing the login or its host key unknown, the ledger gone,
or nothing but 404s.  Judged per recording they would fail
every claimed recording (attempts spent, terminal) until the run ran out of work.

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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenios_io.config import ENV_PREFIX
from tenios_io.custody.chain import NewEvent
from tenios_io.exceptions import (
    AccessDenied,
    ConfigError,
    HostKeyError,
    LedgerUnavailable,
    RecordingNotFound,
    StoreAccessDenied,
    WrongApiUrl,
)
from tenios_io.ledger import Ledger

#: Settings whose ConfigError means the SFTP drop refused this archiver's login.
SFTP_LOGIN_SETTINGS = frozenset({f"{ENV_PREFIX}SFTP_KEY_FILE", f"{ENV_PREFIX}SFTP_PASSWORD"})

#: Consecutive 404s, with no success in between, that stop a run (a wrong URL whose
#: 404s look like "not ready yet").
NOT_FOUND_STREAK = 50

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

    def message_for(self, unreleased: Sequence[str], lease_ends_by: datetime | None) -> str:
        """The console line once the run knows which claims it could not give back
        (the ledger did not take them): those stay ``in_progress`` until their lease
        ends, by ``lease_ends_by`` at the latest, and the next run takes them over."""
        head = f"run stopped: {self.cause}: {self.error}. {self.advice}. "
        if not unreleased:
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
        "message": stop.message_for(unreleased, lease_ends_by),
        "released": released,
        "unreleased": list(unreleased),
    }
    try:
        [digest] = ledger.append_events([NewEvent(None, "run_stopped", details)])
    except LedgerUnavailable:
        return None
    return digest


class RunGuard:
    """Shared by every batch of one run (thread-safe): trips once, on the first
    run-wide error or on ``not_found_streak`` consecutive 404s with no success."""

    def __init__(self, not_found_streak: int = NOT_FOUND_STREAK) -> None:
        self.not_found_streak = not_found_streak
        self._lock = threading.Lock()
        self._stop: RunStop | None = None
        self._not_found = 0

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
        """Trip on a run-wide error or a long enough 404 streak; None otherwise."""
        stop = run_wide(exc)
        if stop is not None:
            return self.trip(stop)
        if isinstance(exc, RecordingNotFound):
            with self._lock:
                self._not_found += 1
                streak = self._not_found
            if streak >= self.not_found_streak:
                return self.trip(
                    RunStop(
                        f"{streak} recordings in a row answered 404 and none was found",
                        "Check TENIOS_API_URL and that these recordings exist at TENIOS; "
                        "if they are simply not ready yet, run again later",
                        EXIT_PROBLEMS,
                        f"{type(exc).__name__}: {exc}",
                    )
                )
        return None

    def succeeded(self) -> None:
        """A recording was fetched: the 404 streak starts over."""
        with self._lock:
            self._not_found = 0


__all__ = ["NOT_FOUND_STREAK", "RunGuard", "RunStop", "record_stop", "run_wide"]
