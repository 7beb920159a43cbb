"""The archive's side of C2SP tlog-witness: submit a checkpoint, read the answer.

One ``POST <url>/add-checkpoint`` per witness per checkpoint (the old size is the
size that witness last cosigned, read from the bucket's latest checkpoint); only when
the archive does not know that size — the witness missed a run — does its 409 say
it, and a second request follows with the proof from there.  Answers, as data:

- ``cosigned``: the witness's cosignature line, verified against its key;
- ``unavailable``: connection refused, timeout, 5xx — the next run tries again;
- ``conflict``: a 409 naming the size the witness knows;
- ``forked``: the witness refused a checkpoint this log signed (422, or a 409 whose
  size this log cannot extend): the log's history differs from what it cosigned;
- ``refused``: 400/403/404/413 or an answer that does not verify — a setup problem
  (the witness does not follow this log's key, or is not the key configured).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

from tenios_io.custody.cosignature import WitnessVerifier, add_signatures, verify_cosignatures
from tenios_io.custody.signing import NoteError

Kind = Literal["cosigned", "unavailable", "conflict", "forked", "refused"]
_MAX_ANSWER_BYTES = 16 * 1024


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the archive submits to: its verifier key and its base URL."""

    verifier: WitnessVerifier
    url: str

    @property
    def name(self) -> str:
        return self.verifier.name


@dataclass(frozen=True)
class Submission:
    """What one witness answered to one checkpoint."""

    kind: Kind
    witness: str
    message: str = ""
    line: str | None = None
    """The cosignature line (``cosigned``)."""
    known_size: int | None = None
    """The size the witness says it cosigned last (``conflict``, ``forked`` on a 409)."""
    timestamp: int | None = None


def request_body(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    """The add-checkpoint body: old size, proof lines, a blank line, the checkpoint."""
    lines = [f"old {old_size}"] + [base64.b64encode(node).decode() for node in proof]
    return ("\n".join(lines) + "\n\n").encode() + note


def submit(
    http: httpx.Client,
    endpoint: WitnessEndpoint,
    old_size: int,
    proof: Sequence[bytes],
    note: bytes,
) -> Submission:
    """POST the checkpoint ``note`` to ``endpoint``; never raises for what it answers."""
    name = endpoint.name
    try:
        response = http.post(
            endpoint.url.rstrip("/") + "/add-checkpoint",
            content=request_body(old_size, proof, note),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        answer = response.content[:_MAX_ANSWER_BYTES]
    except httpx.HTTPError as exc:
        return Submission("unavailable", name, f"{type(exc).__name__}: {exc}")
    status = response.status_code
    text = answer.decode("utf-8", errors="replace").strip()
    if status == 200:
        return _cosigned(endpoint, note, text)
    if status == 409:
        if not text.isdigit():
            return Submission("refused", name, f"409 without a size: {text[:80]!r}")
        return Submission("conflict", name, "409", known_size=int(text))
    if status == 422:
        return Submission("forked", name, f"422: {text[:200]}")
    if status >= 500 or status == 429:
        return Submission("unavailable", name, f"HTTP {status}: {text[:200]}")
    return Submission("refused", name, f"HTTP {status}: {text[:200]}")


def _cosigned(endpoint: WitnessEndpoint, note: bytes, text: str) -> Submission:
    lines = [line for line in text.split("\n") if line]
    try:
        found = verify_cosignatures(add_signatures(note, lines), [endpoint.verifier])
    except NoteError as exc:
        return Submission("refused", endpoint.name, f"its answer does not verify: {exc}")
    if endpoint.name not in found:
        return Submission(
            "refused",
            endpoint.name,
            "its answer holds no cosignature of the configured key "
            f"{endpoint.verifier} (check TENIOS_CUSTODY_WITNESSES)",
        )
    mine = [
        line
        for line in lines
        if verify_cosignatures(add_signatures(note, [line]), [endpoint.verifier])
    ]
    return Submission("cosigned", endpoint.name, line=mine[0], timestamp=found[endpoint.name])
