"""Collect the witnesses' cosignatures of a new custody log checkpoint.

After :func:`~tenios_io.publish.log.publish_log` has extended the log and signed a
checkpoint, each witness of ``TENIOS_CUSTODY_WITNESSES`` gets it once (C2SP
tlog-witness, :mod:`tenios_io.witness.client`): the old size is the size of the
bucket's latest checkpoint when that witness cosigned it, with the consistency proof
from there, read from the log's tiles.  Only when the bucket does not show what the
witness cosigned last (it missed a run) does a 409 tell, and one more request
follows from that size.

What each witness answered is a :class:`WitnessReport`:

- a witness that is down, times out or answers 5xx: the checkpoint goes on without
  its cosignature; the next run submits again (``unavailable``);
- a witness that refuses the log's history — 422, or a 409 whose size this log
  does not extend — is a custody alarm (``forked``): the log in the bucket is not the
  history it cosigned before.  The run records a ``log_forked`` custody event and
  ends non-zero (:mod:`tenios_io.publish.checkpoints`);
- 400/403/404 or an answer that does not verify: a setup problem (``refused``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tenios_io.custody import merkle, signing
from tenios_io.custody.checkpoints import CheckpointError, open_checkpoint
from tenios_io.custody.cosignature import (
    WitnessPolicy,
    add_signatures,
    parse_witness_verifier,
    verify_cosignatures,
)
from tenios_io.exceptions import ConfigError
from tenios_io.witness.client import Submission, WitnessEndpoint, submit

log = logging.getLogger("tenios_io.custodylog")
VARIABLE = "TENIOS_CUSTODY_WITNESSES"
_CONNECT_SECONDS = 5.0
_READ_SECONDS = 15.0


@dataclass(frozen=True)
class Witnesses:
    """The witnesses a run submits to, and how many must cosign."""

    endpoints: tuple[WitnessEndpoint, ...]
    quorum: int

    @property
    def policy(self) -> WitnessPolicy:
        return WitnessPolicy(tuple(e.verifier for e in self.endpoints), self.quorum)


def load_witnesses(text: str | None, quorum: int | None) -> Witnesses | None:
    """The witnesses of TENIOS_CUSTODY_WITNESSES (None when unset); ConfigError naming it."""
    if not text:
        return None
    endpoints = []
    for entry in text.split(","):
        key, _, url = entry.strip().partition("@")
        try:
            verifier = parse_witness_verifier(key)
        except signing.NoteError as exc:
            raise ConfigError(
                f"{VARIABLE}: {key[:60]!r} is not a witness verifier key ({exc}); use the key "
                "`tenios-archive witness keygen` printed",
                variable=VARIABLE,
            ) from None
        endpoints.append(WitnessEndpoint(verifier, url.rstrip("/")))
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise ConfigError(f"{VARIABLE}: two witnesses share a name", variable=VARIABLE)
    return Witnesses(tuple(endpoints), len(endpoints) if quorum is None else quorum)


@dataclass(frozen=True)
class WitnessSession:
    """The witnesses and the HTTP client a checkpoint is submitted with."""

    witnesses: Witnesses
    http: httpx.Client

    def collect(
        self, note: bytes, previous: bytes | None, reader: merkle.NodeReader
    ) -> WitnessReport:
        return collect_cosignatures(self.http, self.witnesses, note, previous, reader)


@contextmanager
def witness_session(witnesses: Witnesses | None) -> Iterator[WitnessSession | None]:
    """A session for ``witnesses`` (None when there are none): short timeouts, so a
    witness that is down does not hold the run; no proxy variables (only config reads
    the environment)."""
    if witnesses is None:
        yield None
        return
    timeout = httpx.Timeout(_READ_SECONDS, connect=_CONNECT_SECONDS)
    with httpx.Client(timeout=timeout, trust_env=False) as http:
        yield WitnessSession(witnesses, http)


@dataclass
class WitnessReport:
    """What the witnesses made of one checkpoint."""

    size: int
    quorum: int
    names: tuple[str, ...]
    note: bytes = b""
    """The checkpoint with every valid cosignature, as stored."""
    witnessed: dict[str, int] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    forked: dict[str, str] = field(default_factory=dict)

    @property
    def satisfied(self) -> bool:
        return len(self.witnessed) >= self.quorum

    def fork_message(self) -> str | None:
        """The custody alarm, one line (None when no witness refused the history)."""
        if not self.forked:
            return None
        who = "; ".join(f"{name}: {why}" for name, why in sorted(self.forked.items()))
        return (
            f"LOG FORKED: witness(es) refused custody log checkpoint {self.size} because it "
            f"does not extend what they cosigned before ({who}). The log in the bucket is not "
            "the history the witnesses saw: do not delete or rewrite anything; run `tenios-"
            "archive audit verify-bucket --key KEY --witness KEY` and `audit verify-chain`, "
            "compare with the witness's STATE/refused/, and call the compliance team"
        )

    def summary(self) -> str:
        """One line for the run's summary."""
        text = f"{len(self.witnessed)} of {len(self.names)} cosigned checkpoint {self.size}"
        text += " (witnessed)" if self.satisfied else f" (needs {self.quorum}: NOT witnessed yet)"
        for label, found in (
            ("unreachable, the next run retries", self.unavailable),
            ("refused", self.refused),
            ("FORKED", self.forked),
        ):
            if found:
                text += f"; {label}: {', '.join(sorted(found))}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "quorum": self.quorum,
            "witnessed": self.satisfied,
            "cosigned_by": sorted(self.witnessed),
            "unavailable": dict(self.unavailable),
            "refused": dict(self.refused),
            "forked": dict(self.forked),
            "summary": self.summary(),
        }


def collect_cosignatures(
    http: httpx.Client,
    witnesses: Witnesses,
    note: bytes,
    previous: bytes | None,
    reader: merkle.NodeReader,
) -> WitnessReport:
    """``note`` (a signed checkpoint) with a cosignature of every witness that gives one.

    ``previous``: the bucket's latest checkpoint before this one (its cosignatures say
    which size each witness cosigned last).  ``reader``: the tree the note signs.
    Never raises for what a witness answers.
    """
    checkpoint = open_checkpoint(note, None)
    report = WitnessReport(
        checkpoint.size, witnesses.quorum, tuple(e.name for e in witnesses.endpoints)
    )
    policy = witnesses.policy
    already = policy.check(note).witnessed
    last = _last_cosigned(previous, witnesses)
    lines: list[str] = []
    for endpoint in witnesses.endpoints:
        if endpoint.name in already:
            report.witnessed[endpoint.name] = already[endpoint.name]
            continue
        answer = _ask(http, endpoint, last.get(endpoint.name, 0), checkpoint.size, note, reader)
        if answer.kind == "cosigned" and answer.line is not None:
            lines.append(answer.line)
            report.witnessed[endpoint.name] = int(answer.timestamp or 0)
        elif answer.kind == "forked":
            report.forked[endpoint.name] = answer.message
        elif answer.kind == "unavailable":
            report.unavailable[endpoint.name] = answer.message
        else:
            report.refused[endpoint.name] = answer.message
    report.note = add_signatures(note, lines)
    for name, why in report.unavailable.items():
        log.warning(
            "witness %s did not answer for checkpoint %d (%s); the next run submits it again",
            name,
            checkpoint.size,
            why,
        )
    for name, why in report.refused.items():
        log.warning("witness %s refused checkpoint %d: %s", name, checkpoint.size, why)
    return report


def _last_cosigned(previous: bytes | None, witnesses: Witnesses) -> dict[str, int]:
    """Witness name → the size of ``previous`` for each witness that cosigned it."""
    if previous is None:
        return {}
    try:
        size = open_checkpoint(previous, None).size
        found = verify_cosignatures(previous, [e.verifier for e in witnesses.endpoints])
    except (CheckpointError, signing.NoteError):
        return {}  # not trusted: ask the witnesses instead
    return dict.fromkeys(found, size)


def _ask(
    http: httpx.Client,
    endpoint: WitnessEndpoint,
    old: int,
    size: int,
    note: bytes,
    reader: merkle.NodeReader,
) -> Submission:
    """One request, and a second only when a 409 names a size this log can prove from."""
    if old > size:
        old = 0  # the bucket's latest is ahead of this checkpoint: let the witness say
    answer = submit(http, endpoint, old, _proof(reader, old, size), note)
    if answer.kind != "conflict" or answer.known_size is None:
        return answer
    known = answer.known_size
    if known == old or known > size:
        what = (
            f"it cosigned another tree of {known} events"
            if known == old
            else f"it cosigned a tree of {known} events, this log has {size}"
        )
        return Submission("forked", endpoint.name, f"409: {what}", known_size=known)
    answer = submit(http, endpoint, known, _proof(reader, known, size), note)
    if answer.kind == "conflict":
        return Submission(
            "unavailable", endpoint.name, "409 twice: another writer submitted meanwhile"
        )
    return answer


def _proof(reader: merkle.NodeReader, old: int, size: int) -> list[bytes]:
    return merkle.consistency_proof(reader, old, size) if old else []
