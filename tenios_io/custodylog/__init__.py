"""The custody log in the bucket: C2SP tlog-tiles over the custody events, signed checkpoints.

An auditor verifies the archive from the bucket and the public key alone
(:mod:`~tenios_io.custodylog.verify`), carries away a proof for one recording
(:mod:`~tenios_io.custodylog.prove`), and the ledger can be rebuilt from it.
The Merkle math and tile layout are :mod:`tenios_io.ledger.merkle`; the note
format is :mod:`tenios_io.signing`.
"""

from __future__ import annotations

from tenios_io.custodylog.checkpoints import CheckpointError, LogCheckpoint, open_checkpoint
from tenios_io.custodylog.layout import default_origin, log_prefix
from tenios_io.custodylog.publish import Published, load_signer, publish_log

__all__ = [
    "CheckpointError",
    "LogCheckpoint",
    "Published",
    "default_origin",
    "load_signer",
    "log_prefix",
    "open_checkpoint",
    "publish_log",
]
