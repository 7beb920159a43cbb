"""Where the custody log lives in the bucket, and what one log entry is.

Under ``{prefix}/_custody/log/`` (C2SP tlog-tiles, paths from :mod:`tenios_io.custody.merkle`)::

    checkpoint                       the latest signed checkpoint (replaced by each run)
    checkpoints/<size, 20 digits>    every signed checkpoint, kept (If-None-Match: *)
    tile/<L>/<N>[.p/<W>]             hash tiles
    tile/entries/<N>[.p/<W>]         entry bundles: the custody events themselves

A log entry is one custody event's canonical JSON (UTF-8) with its sequence number,
exactly the body the linear chain hashes (``tenios_io.custody.chain.event_hash``);
leaf ``i`` of the tree is the event with ``seq = i + 1``.  So the bucket alone holds
every event, and the chain can be recomputed from the entry bundles.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tenios_io.custody.chain import canonical_json, event_body, recanonical

LOG_DIR = "_custody/log"
CHAIN_CHECKPOINT_DIR = "_custody/checkpoints"
"""The custody chain's JSON checkpoints (``tenios_io.publish.checkpoints``)."""
LEDGER_ID_NAME = "_custody/ledger-id"
"""The id of the one ledger that archives under the prefix (``tenios_io.publish.identity``)."""


def log_prefix(store_prefix: str) -> str:
    """The log's key prefix inside the bucket (ends with ``/``)."""
    return f"{store_prefix}/{LOG_DIR}/" if store_prefix else f"{LOG_DIR}/"


def default_origin(bucket: str, store_prefix: str) -> str:
    """The checkpoints' origin line: ``tenios-archive/{bucket}/{prefix}``."""
    return f"tenios-archive/{bucket}/{store_prefix}".rstrip("/")


def checkpoint_name(size: int) -> str:
    """The numbered checkpoint of tree size ``size``, relative to the log prefix."""
    return f"checkpoints/{size:020d}"


LATEST = "checkpoint"


def event_entry(row: Mapping[str, Any]) -> bytes:
    """The log entry of a stored custody event row (``details`` as stored JSON text):
    ``canonical_json`` of the event with its details parsed, built as the chain builds
    it (custody.event_body; every event of a run is logged at its checkpoint)."""
    return event_body(
        int(row["seq"]),
        row["recording_uuid"],
        row["event"],
        row["actor"],
        row["occurred_at"],
        recanonical(row["details"]),
    ).encode("utf-8")


def parse_entry(entry: bytes) -> dict[str, Any]:
    """A log entry back as an event (``details`` a dict); ValueError if it is not one."""
    value = json.loads(entry.decode("utf-8"))
    if not isinstance(value, dict) or set(value) != {
        "seq",
        "recording_uuid",
        "event",
        "actor",
        "occurred_at",
        "details",
    }:
        raise ValueError("not a custody event entry")
    if not isinstance(value["seq"], int) or not isinstance(value["details"], dict):
        raise ValueError("not a custody event entry")
    if canonical_json(value).encode("utf-8") != entry:
        raise ValueError("entry is not in canonical form")
    return value
