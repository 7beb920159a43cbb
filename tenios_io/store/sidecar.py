"""Reading the ``.json`` custody sidecars that earlier versions wrote beside each recording.

This version writes none: a recording object carries its custody facts as user
metadata in the PUT that writes it (:mod:`tenios_io.store.metadata`), and each
archived batch gets a custody manifest.  Archives written before keep their
sidecars; the audit reads one where it exists and never requires it.  Botocore's
errors pass through untranslated: the store calls this inside its translation.
"""

from __future__ import annotations

import json
from typing import Any, Final

from tenios_io.exceptions import VerificationFailed
from tenios_io.store.bucket import Bucket

__all__ = ["MAX_SIDECAR_BYTES", "read_json"]

MAX_SIDECAR_BYTES: Final = 1024 * 1024
"""A sidecar larger than this is not one."""


def read_json(bucket: Bucket, key: str, recording_uuid: str | None) -> Any:
    """GET ``key`` (at most :data:`MAX_SIDECAR_BYTES`) and parse it; VerificationFailed if
    it is too large or not JSON."""
    response = bucket.client.get_object(Bucket=bucket.name, Key=key)
    body = response["Body"]
    try:
        raw = body.read(MAX_SIDECAR_BYTES + 1)
    finally:
        body.close()
    if len(raw) > MAX_SIDECAR_BYTES:
        raise VerificationFailed(
            f"s3://{bucket.name}/{key} is larger than a sidecar can be",
            recording_uuid=recording_uuid,
            s3_key=key,
        )
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VerificationFailed(
            f"s3://{bucket.name}/{key} is not valid JSON ({exc})",
            recording_uuid=recording_uuid,
            s3_key=key,
        ) from exc
