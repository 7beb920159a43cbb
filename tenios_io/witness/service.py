"""The witness's one operation, C2SP tlog-witness ``add-checkpoint``, without the HTTP.

:meth:`Witness.add_checkpoint` takes the request body and answers a status and a
body, as the spec orders the checks:

- 400 a malformed request (old size line, proof lines, blank line, checkpoint note),
  or an old size above the checkpoint's;
- 404 an origin this witness follows no log for (no line of a ``--log`` key, and no
  state bound to one);
- 403 no signature of the origin's log key verifies;
- 409 (``text/x.tlog.size``, the size it knows) when the old size is not the size it
  last cosigned, or the same size arrives with another root;
- 422 the consistency proof from what it cosigned to the new checkpoint fails;
- 200 the cosignature line, after the new state is on disk.

The first checkpoint the witness cosigns for an origin binds that origin to the log
key that signed it; later checkpoints of that origin must carry that key's signature.
A refused request that carries a valid log signature (409 on a root, 422) is kept in
the state folder's ``refused/``: it is the log's own signed evidence of a fork.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenios_io.custody import merkle, signing
from tenios_io.custody.checkpoints import CheckpointError, parse_body
from tenios_io.custody.cosignature import WitnessSigner, cosign
from tenios_io.witness.state import LogState, WitnessState

log = logging.getLogger("tenios_io.witness")

MAX_REQUEST_BYTES = 64 * 1024
"""A request is an old size, at most 63 hashes and a checkpoint: a few kilobytes."""
MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
TEXT = "text/plain; charset=utf-8"
_OLD = re.compile(r"old (0|[1-9][0-9]{0,19})")


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, body, content type."""

    status: int
    body: bytes
    content_type: str = TEXT

    @classmethod
    def text(cls, status: int, message: str) -> Answer:
        return cls(status, message.encode() + b"\n")


class _Refused(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.body.decode(errors="replace"))
        self.answer = answer


@dataclass(frozen=True)
class _Request:
    old: int
    proof: list[bytes]
    note: bytes
    body: str
    origin: str
    size: int
    root: bytes


def parse_request(request: bytes) -> _Request:
    """The request's parts; :class:`_Refused` (400) saying what is malformed."""
    if len(request) > MAX_REQUEST_BYTES:
        raise _Refused(Answer.text(413, f"request over {MAX_REQUEST_BYTES} bytes"))
    try:
        text = request.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(Answer.text(400, "request is not UTF-8")) from None
    head, blank, note = text.partition("\n\n")
    lines = head.split("\n")
    if not blank or not _OLD.fullmatch(lines[0]):
        raise _Refused(Answer.text(400, "request must start with 'old <size>' and a blank line"))
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise _Refused(Answer.text(400, f"more than {MAX_PROOF_LINES} consistency proof lines"))
    proof = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            node = signing.b64decode_strict(line)
        except ValueError:
            node = b""
        if len(node) != merkle.HASH_SIZE:
            raise _Refused(Answer.text(400, f"line {number}: not a base64 SHA-256 hash"))
        proof.append(node)
    try:
        body, _ = signing.split_note(note.encode())
        origin, size, root = parse_body(body.decode())
    except (signing.NoteError, CheckpointError) as exc:
        raise _Refused(Answer.text(400, f"malformed checkpoint: {exc}")) from None
    old = int(lines[0].removeprefix("old "))
    if old > size:
        raise _Refused(Answer.text(400, f"old size {old} is above the checkpoint's {size}"))
    if old == 0 and proof:
        raise _Refused(Answer.text(400, "the consistency proof from size 0 must be empty"))
    return _Request(old, proof, note.encode(), body.decode(), origin, size, root)


class Witness:
    """Cosigns checkpoints of the logs it follows that extend what it cosigned before."""

    def __init__(
        self,
        signer: WitnessSigner,
        logs: Sequence[signing.Verifier],
        state: WitnessState,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.logs = tuple(logs)
        self.state = state
        self._clock = clock

    def add_checkpoint(self, request: bytes) -> Answer:
        """The answer to one ``POST /add-checkpoint`` body."""
        try:
            return self._add(request)
        except _Refused as refused:
            return refused.answer

    def _add(self, request: bytes) -> Answer:
        req = parse_request(request)
        with self.state.locked(req.origin):
            known = self.state.load(req.origin)
            log_key = self._signed_by(req, known)
            known_size = known.size if known else 0
            if req.old != known_size:
                raise _Refused(Answer(409, f"{known_size}\n".encode(), SIZE_CONTENT_TYPE))
            if known is not None and req.size == known.size and req.root != known.root:
                self._evidence(req, request, "the same size with another root")
                raise _Refused(Answer(409, f"{known_size}\n".encode(), SIZE_CONTENT_TYPE))
            if known is not None:
                try:
                    merkle.verify_consistency(known.size, req.size, known.root, req.root, req.proof)
                except merkle.ProofError as exc:
                    self._evidence(req, request, f"consistency proof fails: {exc}")
                    raise _Refused(
                        Answer.text(422, f"the checkpoint does not extend size {known.size}: {exc}")
                    ) from None
            self.state.save(LogState(req.origin, req.size, req.root, log_key))
        return Answer(200, cosign(req.body, self.signer, int(self._clock())).encode())

    def _signed_by(self, req: _Request, known: LogState | None) -> str:
        """The verifier key (text) of the log key that validly signs the checkpoint."""
        _, signatures = signing.split_note(req.note)
        candidates = [v for v in self.logs if known is None or str(v) == known.log_key]
        if not candidates:
            raise _Refused(Answer.text(404, f"unknown log origin {req.origin!r}"))
        claimed = [
            v
            for v in candidates
            for name, raw in signatures
            if v.name == name and v.hash == raw[:4]
        ]
        if not claimed and known is None:
            raise _Refused(Answer.text(404, f"no log this witness follows signs {req.origin!r}"))
        for verifier in claimed:
            try:
                signing.open_note(req.note, verifier)
            except signing.NoteError:
                continue
            return str(verifier)
        raise _Refused(Answer.text(403, f"no valid signature of the log key of {req.origin!r}"))

    def _evidence(self, req: _Request, request: bytes, reason: str) -> None:
        path = self.state.keep_evidence(req.origin, request, reason)
        log.warning(
            "refused a checkpoint of %r (size %d): %s; the signed request is kept in %s",
            req.origin,
            req.size,
            reason,
            path,
        )
