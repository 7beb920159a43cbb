"""Ledger → bucket: what a run writes beside the recordings so the bucket can speak for itself.

The custody log's tiles, entry bundles and signed checkpoints
(:mod:`~tenios_io.publish.log`, :mod:`~tenios_io.publish.checkpoints`), the per-batch
custody manifests (:mod:`~tenios_io.publish.manifests`), the ledger's identity kept
in the bucket (:mod:`~tenios_io.publish.identity`) and the way back, a ledger rebuilt
from the bucket (:mod:`~tenios_io.publish.restore`).  The formats themselves are
:mod:`tenios_io.custody`.
"""
