"""The custody format, pure: what an auditor needs to check the archive, and nothing else.

The hash chain of custody events (:mod:`~tenios_io.custody.chain`), the RFC 6962
Merkle tree and the C2SP tlog-tiles layout (:mod:`~tenios_io.custody.merkle`,
:mod:`~tenios_io.custody.layout`, :mod:`~tenios_io.custody.tree`), signed notes and
checkpoints (:mod:`~tenios_io.custody.signing`, :mod:`~tenios_io.custody.checkpoints`),
C2SP tlog-proofs and their offline check (:mod:`~tenios_io.custody.tlogproof`,
:mod:`~tenios_io.custody.proof`), custody key rotations
(:mod:`~tenios_io.custody.rotation`) and the bucket-only verifier
(:mod:`~tenios_io.custody.verify`).

No module here imports SQL or builds a network client: the verifier reads through the
store it is given, so it runs wherever the bucket can be read (a test holds it to
that).  Writing the log and checkpoints from the ledger is :mod:`tenios_io.publish`.
"""
