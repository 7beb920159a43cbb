"""`audit rotate-key`: hand the custody log from one signing key to the next, in the log.

The rotation is a ``key_rotated`` custody event (:mod:`tenios_io.custody.rotation`)
that a checkpoint signed by the **old** key publishes; from then on the run's
preflight accepts the new key and refuses the old one, and `verify-bucket`, given the
original key, follows the chain.  Safe to run twice: an unpublished rotation to the
same key is published, not logged again.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenios_io.custody import signing
from tenios_io.custody.chain import NewEvent
from tenios_io.custody.rotation import ROTATION_EVENT, Rotation, rotation_details
from tenios_io.exceptions import ConfigError
from tenios_io.ledger import Ledger
from tenios_io.publish.checkpoints import Checkpoint, write_checkpoint
from tenios_io.publish.log import check_signing_key, latest_rotation
from tenios_io.store import ArchiveStore


@dataclass(frozen=True)
class Rotated:
    """What :func:`rotate_key` did."""

    rotation: Rotation
    checkpoint: Checkpoint
    """The checkpoint, signed by the old key, that publishes the rotation."""
    logged_now: bool
    """False when an earlier, unpublished call had logged the same rotation."""


def rotate_key(
    ledger: Ledger,
    store: ArchiveStore,
    old: signing.Signer,
    new: signing.Signer,
    *,
    actor: str | None = None,
) -> Rotated:
    """Log the rotation from ``old`` to ``new`` and publish it in a checkpoint ``old`` signs.

    ConfigError when ``old`` is not the key the log is signed with now, or when the
    two are the same key.
    """
    if str(old.verifier) == str(new.verifier):
        raise ConfigError(
            "--new-key is the key TENIOS_CUSTODY_KEY_FILE already holds: create a new one "
            "with `tenios-archive audit keygen`",
            variable="TENIOS_CUSTODY_KEY_FILE",
        )
    check_signing_key(ledger, store, old)  # the old key must be the one signing now
    pending = latest_rotation(ledger)
    logged_now = not (
        pending is not None
        and str(pending.old) == str(old.verifier)
        and str(pending.new) == str(new.verifier)
    )
    if logged_now:
        ledger.append_events(
            [NewEvent(None, ROTATION_EVENT, rotation_details(old.verifier, new.verifier))],
            actor=actor,
        )
    rotation = latest_rotation(ledger)
    assert rotation is not None  # just logged, or logged before
    checkpoint = write_checkpoint(ledger, store, actor=actor, signer=old)
    return Rotated(rotation, checkpoint, logged_now)
