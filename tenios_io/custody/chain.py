"""The custody chain: append-only events, each hashed over its predecessor.

``hash = sha256(prev_hash || canonical_json(event))`` where the event is
``{seq, recording_uuid, event, actor, occurred_at, details}`` and the genesis
``prev_hash`` is 64 zeros.  ``seq`` is gap-free and inside the hash, so an edited,
deleted, inserted or reordered event breaks the chain at that point; a cut-off
tail is caught by comparing with the checkpoints written into the bucket.

Pure: hashing and canonical JSON only.  The SQL side (queue, sequencer, reads of
the chain) is :mod:`tenios_io.ledger.sequencer`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import json.encoder
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


#: One encoder for canonical JSON: ``json.dumps`` with options builds a new one per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


#: JSON string literal exactly as ``json.dumps(..., ensure_ascii=False)`` writes it.
_json_str = json.encoder.encode_basestring


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept."""
    return _CANONICAL.encode(value)


def _no_default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: The standard library's C scanner and encoder, called directly by :func:`recanonical`
#: (json.loads and JSONEncoder.encode wrap them in per-call Python: a whitespace regex,
#: a new C encoder per call), with the same settings as ``json.loads`` / ``_CANONICAL``.
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


_c_encoder = getattr(json.encoder, "c_make_encoder", None)


_encode_parsed = (
    None
    if _c_encoder is None
    else _c_encoder(None, _no_default, _json_str, None, ":", ",", True, False, True)
)


def recanonical(details: str) -> str:
    """``canonical_json(json.loads(details))``, the same string or the same error, at
    about half the cost: stored details are re-canonicalised for every event that is
    sequenced, verified, hashed into a manifest or logged (several per recording).

    The fast path takes only a string that is one JSON value with nothing around it;
    anything else (whitespace, extra data, invalid JSON) goes through ``json.loads``,
    which returns or raises exactly as before.  No circular-reference check is needed:
    what ``json.loads`` returns has no cycles.
    """
    if _encode_parsed is None or not isinstance(details, str):
        return canonical_json(json.loads(details))
    try:
        value, end = _scan_json(details, 0)
    except (StopIteration, ValueError):
        return canonical_json(json.loads(details))
    if end != len(details):
        return canonical_json(json.loads(details))
    return "".join(_encode_parsed(value, 0))


#: The custody log's limit on one entry (C2SP tlog-tiles entry bundles: a 2-byte length).
MAX_ENTRY_BYTES = 0xFFFF
#: A string in an event's details (or an actor) longer than this is logged as its head
#: and its SHA-256 (:func:`bounded_text`): producers and drop names are hostile data.
MAX_FIELD_CHARS = 1024
#: Canonical details larger than this (UTF-8) are logged as their size and SHA-256 only,
#: so that an entry — details, actor and the rest — always fits MAX_ENTRY_BYTES.
MAX_DETAILS_BYTES = 32 * 1024
#: Details of at most this many characters are at most MAX_DETAILS_BYTES of UTF-8: one
#: ``len`` decides for almost every event (the hot path).
_SMALL_DETAILS = MAX_DETAILS_BYTES // 4
_HEAD_CHARS = 200


def bounded_text(value: str) -> str:
    """``value`` when at most MAX_FIELD_CHARS long, else its head, its length and its
    SHA-256: an over-long value is still identified, never logged whole."""
    if len(value) <= MAX_FIELD_CHARS:
        return value
    digest = hashlib.sha256(value.encode("utf-8", errors="surrogatepass")).hexdigest()
    return f"{value[:_HEAD_CHARS]}… [{len(value):,} characters, sha256 {digest}]"


def _bound(value: Any) -> Any:
    if isinstance(value, str):
        return bounded_text(value)
    if isinstance(value, Mapping):
        return {str(k): _bound(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_bound(v) for v in value]
    return value


def fit_details(canonical_details: str) -> str:
    """Canonical details that fit the custody log: these, when small enough (one
    ``len`` for almost every event), else with every long string bounded
    (:func:`bounded_text`), else only their size and SHA-256.  A producer's 70 KB
    field can never make an entry the log cannot hold (no checkpoint could follow)."""
    if len(canonical_details) <= _SMALL_DETAILS:
        return canonical_details
    raw = canonical_details.encode("utf-8", errors="surrogatepass")
    if len(raw) <= MAX_DETAILS_BYTES:
        return canonical_details
    bounded = canonical_json(_bound(json.loads(canonical_details)))
    if len(bounded.encode("utf-8", errors="surrogatepass")) <= MAX_DETAILS_BYTES:
        return bounded
    return canonical_json(
        {"details_omitted": {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}}
    )


def logged_json(details: Mapping[str, Any]) -> str:
    """The canonical JSON of an event's details as the chain and the log keep them
    (:func:`fit_details`)."""
    return fit_details(canonical_json(dict(details)))


def entry_size(
    seq: int,
    recording_uuid: str | None,
    event: str,
    actor: str,
    occurred_at: str,
    canonical_details: str,
) -> int:
    """The byte size of an event's custody log entry (:func:`event_body` as UTF-8)."""
    body = event_body(seq, recording_uuid, event, actor, occurred_at, canonical_details)
    return len(body.encode("utf-8", errors="surrogatepass"))


def format_time(moment: datetime) -> str:
    """UTC, microseconds, 'Z': the form hashed and stored (``%Y-%m-%dT%H:%M:%S.%fZ``)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    if moment.year < 1000:  # strftime's %Y does not pad them to 4 digits; isoformat does
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # isoformat is C code: a third of strftime's cost, several times per recording.
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def event_hash(prev_hash: str, row: Mapping[Any, Any]) -> str:
    """The chain hash of one stored event row."""
    return chain_hash(
        prev_hash,
        int(row["seq"]),
        row["recording_uuid"],
        row["event"],
        row["actor"],
        row["occurred_at"],
        recanonical(row["details"]),
    )


def chain_hash(
    prev_hash: str,
    seq: int,
    recording_uuid: str | None,
    event: str,
    actor: str,
    occurred_at: str,
    canonical_details: str,
) -> str:
    """``sha256(prev_hash || canonical_json(event))``, the event's canonical JSON built
    by :func:`event_body`.  ``canonical_details`` must already be canonical JSON."""
    body = event_body(seq, recording_uuid, event, actor, occurred_at, canonical_details)
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def event_body(
    seq: int,
    recording_uuid: str | None,
    event: str,
    actor: str,
    occurred_at: str,
    canonical_details: str,
) -> str:
    """An event's canonical JSON (what the chain hashes and the custody log holds) built
    directly: the same string as ``canonical_json`` of the dict (keys in sorted order,
    the standard library's own string encoder), without building and sorting a dict
    per event — the sequencer hashes millions of them in an import.
    ``canonical_details`` must already be canonical JSON."""
    return (
        f'{{"actor":{_json_str(actor)},"details":{canonical_details},'
        f'"event":{_json_str(event)},"occurred_at":{_json_str(occurred_at)},'
        f'"recording_uuid":{"null" if recording_uuid is None else _json_str(recording_uuid)},'
        f'"seq":{seq}}}'
    )


@dataclass(frozen=True)
class NewEvent:
    """An event to append."""

    recording_uuid: str | None
    event: str
    details: Mapping[str, Any]


@dataclass(frozen=True)
class ChainHead:
    """The newest event of the chain (seq 0 and GENESIS when empty)."""

    seq: int
    hash: str


def entry_digest(
    recording_uuid: str | None, event: str, actor: str, occurred_at: str, details: str
) -> str:
    """The SHA-256 of an event's own content, without its place in the chain.

    Known when the event is written (before it is sequenced), so a document written
    beside the event (a sidecar) can name it; :func:`row_digest` recomputes it from a
    stored event.
    """
    return canonical_entry_digest(recording_uuid, event, actor, occurred_at, recanonical(details))


def canonical_entry_digest(
    recording_uuid: str | None, event: str, actor: str, occurred_at: str, canonical_details: str
) -> str:
    """:func:`entry_digest` of an event whose details are already canonical JSON, its
    body built directly in sorted-key order (as :func:`chain_hash` does)."""
    body = (
        f'{{"actor":{_json_str(actor)},"details":{canonical_details},'
        f'"event":{_json_str(event)},"occurred_at":{_json_str(occurred_at)},'
        f'"recording_uuid":{"null" if recording_uuid is None else _json_str(recording_uuid)}}}'
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def row_digest(row: Mapping[Any, Any]) -> str:
    """:func:`entry_digest` of a stored (queued or integrated) event row."""
    return entry_digest(
        row["recording_uuid"], row["event"], row["actor"], row["occurred_at"], row["details"]
    )


def canonical_row_digest(row: Mapping[str, Any]) -> str:
    """:func:`row_digest` of a row this process built (its details canonical already)."""
    return canonical_entry_digest(
        row["recording_uuid"], row["event"], row["actor"], row["occurred_at"], row["details"]
    )


#: An event ready to be sequenced: recording_uuid, event, actor, occurred_at and its
#: details as canonical JSON.
Entry = tuple[str | None, str, str, str, str]


@dataclass(frozen=True)
class ChainReport:
    """What verify_chain found."""

    ok: bool
    events: int
    head_seq: int
    head_hash: str
    first_broken_seq: int | None = None
    problem: str | None = None
    queued: int = 0
    """Events written but not yet integrated (not covered by this report)."""


def with_queued(report: ChainReport, queued: int) -> ChainReport:
    """``report`` that also says how many events wait in the queue."""
    return dataclasses.replace(report, queued=queued)


def verify(rows: Iterable[Mapping[Any, Any]]) -> ChainReport:
    """Recompute the chain over ``rows`` (in seq order); name the first broken event."""
    prev, expected_seq, count = GENESIS, 1, 0
    for row in rows:
        seq = int(row["seq"])
        if seq != expected_seq:
            return ChainReport(
                False,
                count,
                expected_seq - 1,
                prev,
                seq,
                f"event {seq}: expected sequence number {expected_seq} "
                "(an event was deleted or inserted before it)",
            )
        if row["prev_hash"] != prev:
            return ChainReport(
                False,
                count,
                seq - 1,
                prev,
                seq,
                f"event {seq}: prev_hash does not match the hash of event {seq - 1}",
            )
        try:
            recomputed = event_hash(prev, row)
        except (ValueError, TypeError) as exc:
            return ChainReport(False, count, seq - 1, prev, seq, f"event {seq}: unreadable ({exc})")
        if recomputed != row["hash"]:
            return ChainReport(
                False,
                count,
                seq - 1,
                prev,
                seq,
                f"event {seq} ({row['event']} of {row['recording_uuid']}): content does not "
                "match its hash (the event was altered)",
            )
        if len(row["details"]) + len(row["actor"]) > _SMALL_DETAILS:
            size = entry_size(
                seq,
                row["recording_uuid"],
                row["event"],
                row["actor"],
                row["occurred_at"],
                recanonical(row["details"]),
            )
            if size > MAX_ENTRY_BYTES:
                return ChainReport(
                    False,
                    count,
                    seq - 1,
                    prev,
                    seq,
                    f"event {seq} ({row['event']} of {row['recording_uuid']}): its custody log "
                    f"entry is {size:,} bytes, over the log's limit of {MAX_ENTRY_BYTES:,}: no "
                    "checkpoint can be written past it",
                )
        prev, expected_seq, count = recomputed, seq + 1, count + 1
    return ChainReport(True, count, expected_seq - 1, prev)
