"""The S3 archive: deterministic keys, never-overwriting verified uploads, retention, custody.

:class:`ArchiveStore` receives a boto3 S3 client (it never builds one; see
:func:`make_s3_client`) and builds three parts on it: an :class:`ArchiveWriter`
(uploads, documents, the bucket check), an :class:`ArchiveReader` (the audit's
reads) and a :class:`RetentionPolicy` (Object Lock, retention, legal holds,
deletes).  Callers that need one part take that part.  With a spooled recording
the store does four things:

1. **Key** — :func:`object_key` builds ``{prefix}/{yyyy}/{mm}/{dd}/{uuid}.{ext}``
   from the ledger's fixed date, so every retry targets the same key, and
   nothing from the input can add or escape a path segment.
2. **Upload, never overwrite** — every write carries ``If-None-Match: *``.  Up to
   the multipart threshold one PUT with ``ChecksumSHA256``; above it a multipart
   upload with a SHA-256 per part, aborted on any failure.  The full SHA-256 goes
   into the object's metadata with its other custody facts (one write per
   recording).  A 412 means the key exists: same SHA-256 and size is "already
   archived" (a crashed earlier attempt), anything else is an
   :class:`~tenios_io.exceptions.ArchiveConflict` — the object is never touched.
3. **Read back** — a HEAD with ``ChecksumMode=ENABLED`` must show the size, the
   SHA-256 (the full-object checksum for a single PUT, the metadata plus the
   composite of the part checksums for multipart), and the requested Object Lock
   mode, retain-until date and legal hold.  S3 itself verifies checksums on
   upload; moto (the local stand-in) does not, so this read-back is the guarantee.
4. **Retention** — Object Lock COMPLIANCE / GOVERNANCE until the recording's date
   plus the retention period when the bucket has Object Lock; otherwise the same
   facts as object tags (``retention-mode``, ``retain-until``), which are a record,
   not a protection, and a warning says so once per store.

``check()`` proves the bucket usable before a run: it exists, versioning and
Object Lock status, and a write and a read of one fixed probe object
``{prefix}/.tenios-archive-probe``.  The probe is written with
``If-None-Match: *``, so only the very first check creates it (one object, even
under a default retention rule); later checks get 412, which S3 answers only to
an authorised caller, and then HEAD it.  ``put_document()`` writes other small
objects (the audit's checkpoints) the same never-overwriting, verified way.

botocore's errors are translated in exactly one place, :mod:`tenios_io.store.errors`:
throttling, 5xx and network errors become ``StoreUnavailable`` (transient;
botocore's standard retry mode has already retried them); missing buckets,
refused permissions and other refusals become ``BucketNotUsable`` naming the
bucket and what to fix.  No message carries a credential.

The modules, from the outside in:

- ``archive_store`` — :class:`ArchiveStore`, the three parts built together;
- ``writer`` — :class:`ArchiveWriter`: recordings and documents, never overwriting;
- ``reader`` — :class:`ArchiveReader`: HEAD, listings (of objects, or of every version
  and delete marker), downloads, documents, sidecars;
- ``retention_policy`` — :class:`RetentionPolicy`: Object Lock, holds, deletes;
- ``protocols`` — what the archiving code needs of a store, as Protocols (the
  in-memory fake that tests use is :mod:`tenios_io.testing`);
- ``upload`` — single and multipart PUTs, the read-back and its comparison;
- ``metadata`` — the custody facts each recording object carries as user metadata;
- ``sidecar`` — reading the ``.json`` sidecars earlier versions wrote;
- ``retention`` — how one write is protected (lock, legal hold, or tags);
- ``bucket`` — the injected client, bucket name, encryption and raw HEAD / tags;
- ``responses`` — reading S3's answers (version ids, checksums, HEAD → ObjectInfo);
- ``errors`` — botocore's errors → ours;
- ``keys``, ``results``, ``client`` — keys, result types, the client factory.

Everything public is re-exported here; import it from ``tenios_io.store``.
The store logs to the ``tenios_io.store`` logger unless given one.
"""

from __future__ import annotations

from tenios_io.store.archive_store import ArchiveStore
from tenios_io.store.client import make_s3_client
from tenios_io.store.errors import _translate as _translate  # tests drive it directly
from tenios_io.store.keys import (
    EXTENSIONS,
    PROBE_NAME,
    SIDECAR_SUFFIX,
    KeyParts,
    object_key,
    parse_object_key,
    sidecar_key,
    validate_prefix,
)
from tenios_io.store.reader import ArchiveReader
from tenios_io.store.results import (
    ArchivedObject,
    BucketStatus,
    ObjectInfo,
    ObjectSummary,
    ObjectVersion,
    RetentionMode,
    SseMode,
)
from tenios_io.store.retention_policy import RetentionPolicy
from tenios_io.store.writer import ArchiveWriter

__all__ = [
    "EXTENSIONS",
    "PROBE_NAME",
    "SIDECAR_SUFFIX",
    "ArchiveReader",
    "ArchiveStore",
    "ArchiveWriter",
    "ArchivedObject",
    "BucketStatus",
    "KeyParts",
    "ObjectInfo",
    "ObjectSummary",
    "ObjectVersion",
    "RetentionMode",
    "RetentionPolicy",
    "SseMode",
    "make_s3_client",
    "object_key",
    "parse_object_key",
    "sidecar_key",
    "validate_prefix",
]
