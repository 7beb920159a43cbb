"""Fault injection for the simulator: what can go wrong, how often, or exactly when.

A :class:`FaultPlan` holds per-request probabilities (seeded, so a run is
reproducible), fixed knobs (Retry-After, latency, not-ready delay) and an
explicit *schedule*: fault tokens consumed one per request, in arrival order.
Recordings may carry their own schedule too (``Simulator.add_recording(faults=...)``);
a request naming such a recording consumes from it first.

Fault tokens (in schedules):

    ok          answer normally
    NNN         answer with that HTTP status (400-599) and a JSON error body;
                404 on retrieve is "not ready yet"; 429 and 503 carry Retry-After
    truncate    send Content-Length of the full body, then close after half of it
    reset       send part of the body (retrieve) or nothing, then reset the TCP connection
    slow        answer normally after ``latency`` seconds (1 s when latency is 0)
    redirect    308 to the same path on https:// (an http:// TENIOS_API_URL, say)

Faults of a retrieve's 200 answer (other requests answer normally), the ways a
body can be wrong that no status code tells (issue 11):

    close       the whole recording, close-delimited: no Content-Length, then close
    cut         close-delimited and cut short: no Content-Length, close after half
    json200     200 with a JSON error document as the body
    html200     200 with an HTML error page as the body
    shortwav    the first half of the WAV with a matching Content-Length: only the
                header's own sizes say it is incomplete

Specification string (``simulator serve --fault SPEC``), comma-separated KEY=VALUE::

    500=P, 503=P, 429=P     probability (0..1) that a request gets that status
    truncate=P, reset=P     probability of a truncated body / a connection reset
    redirect=P              probability of a 308 redirect (1: every request, as for http://)
    revoked-after=N         the access key is refused (403 BAD_CREDENTIALS) from the
                            N-th request on (0: from the start)
    retry-after=S|none      Retry-After seconds sent with 429 and 503 (default 1)
    latency=S               each answer is delayed by a random 0..S seconds
    delay=S                 each answer is delayed by exactly S seconds more (a far-away API)
    not-ready=S             a recording answers 404 for S seconds after it was stopped
    schedule=T:T:...        fault tokens consumed one per request, before any probability

e.g. ``500=0.05,503=0.05,429=0.05,retry-after=1,latency=0.2,truncate=0.02,reset=0.02,not-ready=30``
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Literal

BODY_FAULTS = ("close", "cut", "json200", "html200", "shortwav")
"""Fault tokens that change a retrieve's 200 body (see the module docstring)."""
SCHEDULE_WORDS = ("ok", "truncate", "reset", "slow", "redirect", *BODY_FAULTS)
_PROBABILITY_KEYS = {
    "500": "error_500",
    "503": "error_503",
    "429": "error_429",
    "truncate": "truncate",
    "reset": "reset",
    "redirect": "redirect",
}
SPEC_KEYS = (
    *_PROBABILITY_KEYS,
    "retry-after",
    "latency",
    "delay",
    "not-ready",
    "revoked-after",
    "schedule",
)


def check_token(token: str) -> str:
    """Return ``token`` normalised, or raise ValueError naming the valid tokens."""
    word = token.strip().lower()
    if word in SCHEDULE_WORDS:
        return word
    if word.isdigit() and 400 <= int(word) <= 599:
        return word
    raise ValueError(
        f"unknown fault token {token!r}: use {', '.join(SCHEDULE_WORDS)} or an HTTP status 400-599"
    )


@dataclass(frozen=True)
class FaultPlan:
    """What the simulator does wrong, for a whole run (see the module docstring)."""

    error_500: float = 0.0
    error_503: float = 0.0
    error_429: float = 0.0
    truncate: float = 0.0
    reset: float = 0.0
    redirect: float = 0.0
    revoked_after: int | None = None
    """From this request on (counted from 0) the access key is refused; None: never."""
    retry_after: int | None = 1
    """Seconds in the Retry-After header of 429 and 503 answers; ``None`` sends none."""
    latency: float = 0.0
    """Every answer is delayed by a random 0..latency seconds (``slow`` waits all of it)."""
    delay: float = 0.0
    """Every answer is delayed by exactly this many seconds more: the round trip to an API
    far away (the benchmarks' 100 ms TENIOS)."""
    not_ready: float = 0.0
    """Seconds after ``stop`` during which retrieve answers 404 (not ready yet)."""
    schedule: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for key, name in _PROBABILITY_KEYS.items():
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault {key}: probability must be between 0 and 1, got {value}")
        if sum(getattr(self, name) for name in _PROBABILITY_KEYS.values()) > 1.0:
            raise ValueError("fault probabilities add up to more than 1")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry-after must be >= 0 seconds")
        if self.revoked_after is not None and self.revoked_after < 0:
            raise ValueError("revoked-after must be >= 0 requests")
        if self.latency < 0 or self.not_ready < 0 or self.delay < 0:
            raise ValueError("latency, delay and not-ready must be >= 0 seconds")
        object.__setattr__(self, "schedule", tuple(check_token(t) for t in self.schedule))

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """Parse a ``--fault`` specification; raise ValueError saying what is wrong."""
        values: dict[str, object] = {}
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            key, sep, raw = item.partition("=")
            key, raw = key.strip().lower(), raw.strip()
            if not sep or not raw:
                raise ValueError(f"fault {item!r}: expected KEY=VALUE")
            try:
                if key in _PROBABILITY_KEYS:
                    values[_PROBABILITY_KEYS[key]] = float(raw)
                elif key == "retry-after":
                    values["retry_after"] = None if raw.lower() == "none" else int(raw)
                elif key == "latency":
                    values["latency"] = float(raw)
                elif key == "delay":
                    values["delay"] = float(raw)
                elif key == "not-ready":
                    values["not_ready"] = float(raw)
                elif key == "revoked-after":
                    values["revoked_after"] = int(raw)
                elif key == "schedule":
                    values["schedule"] = tuple(t for t in raw.split(":") if t.strip())
                else:
                    raise ValueError(f"unknown fault {key!r} (known: {', '.join(SPEC_KEYS)})")
            except ValueError as exc:
                if "unknown fault" in str(exc):
                    raise
                wants = {
                    "retry-after": "whole seconds (HTTP Retry-After), e.g. retry-after=1, or none",
                    "revoked-after": "a whole number of requests",
                }.get(key)
                hint = f": it wants {wants}" if wants else ""
                raise ValueError(f"fault {key}: bad value {raw!r}{hint}") from None
        return cls(**values)  # type: ignore[arg-type]

    def to_spec(self) -> str:
        """The plan as a specification string (``FaultPlan.parse`` round-trips it)."""
        default = FaultPlan()
        parts = []
        for key, name in _PROBABILITY_KEYS.items():
            if getattr(self, name):
                parts.append(f"{key}={getattr(self, name):g}")
        if self.retry_after != default.retry_after:
            parts.append(f"retry-after={'none' if self.retry_after is None else self.retry_after}")
        if self.latency:
            parts.append(f"latency={self.latency:g}")
        if self.delay:
            parts.append(f"delay={self.delay:g}")
        if self.not_ready:
            parts.append(f"not-ready={self.not_ready:g}")
        if self.revoked_after is not None:
            parts.append(f"revoked-after={self.revoked_after}")
        if self.schedule:
            parts.append(f"schedule={':'.join(self.schedule)}")
        return ",".join(parts)

    def is_quiet(self) -> bool:
        """True when the plan injects nothing at all."""
        return all(getattr(self, f.name) == getattr(FaultPlan(), f.name) for f in fields(self))


@dataclass(frozen=True)
class Fault:
    """What to do with one request."""

    kind: Literal["ok", "status", "truncate", "reset", "body", "redirect"]
    """``body``: one of :data:`BODY_FAULTS`, named by ``name``."""
    status: int = 200
    delay: float = 0.0
    name: str = "ok"
    """The fault token or probability bucket it came from (see ``Simulator.requests``)."""


class FaultInjector:
    """Decides each request's fault from a plan: schedules first, then seeded chance."""

    def __init__(self, plan: FaultPlan, seed: int) -> None:
        self.plan = plan
        self._rng = random.Random(f"faults:{seed}")
        self._schedule: deque[str] = deque(plan.schedule)
        self._lock = threading.Lock()

    def extend_schedule(self, tokens: Iterable[str]) -> None:
        """Append tokens to the run-wide schedule (e.g. between steps of a test)."""
        checked = [check_token(t) for t in tokens]
        with self._lock:
            self._schedule.extend(checked)

    def next(self, recording_token: str | None = None) -> Fault:
        """The fault for the next request; ``recording_token`` is the recording's own, if any."""
        with self._lock:
            word = recording_token
            if word is None and self._schedule:
                word = self._schedule.popleft()
            delay = self._rng.uniform(0, self.plan.latency) if self.plan.latency else 0.0
            delay += self.plan.delay
            if word is None:
                word = self._draw()
        if word == "slow":
            return Fault("ok", delay=(self.plan.latency or 1.0) + self.plan.delay, name=word)
        if word == "truncate":
            return Fault("truncate", delay=delay, name=word)
        if word == "reset":
            return Fault("reset", delay=delay, name=word)
        if word == "redirect":
            return Fault("redirect", status=308, delay=delay, name=word)
        if word in BODY_FAULTS:
            return Fault("body", delay=delay, name=word)
        if word.isdigit():
            return Fault("status", status=int(word), delay=delay, name=word)
        return Fault("ok", delay=delay, name=word)

    def _draw(self) -> str:
        roll = self._rng.random()
        for key, name in _PROBABILITY_KEYS.items():
            roll -= getattr(self.plan, name)
            if roll < 0:
                return key
        return "ok"
