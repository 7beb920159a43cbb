"""The store's reading part: what the audit reads back from the bucket.

:class:`ArchiveReader` HEADs objects (with their tags when asked), lists a prefix
(its current objects, or every version and delete marker), streams or hashes an
object version, and reads small documents and the ``.json`` sidecars earlier
versions wrote (:mod:`.sidecar`).  It never writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from tenios_io.exceptions import VerificationFailed
from tenios_io.recording.source import Sink
from tenios_io.recording.spool import CHUNK_SIZE
from tenios_io.store.bucket import Bucket
from tenios_io.store.errors import http_status
from tenios_io.store.keys import sidecar_key
from tenios_io.store.responses import object_info, version_arg, version_of
from tenios_io.store.results import ObjectInfo, ObjectSummary, ObjectVersion
from tenios_io.store.sidecar import read_json

__all__ = ["ArchiveReader"]


class ArchiveReader:
    """Reads of one bucket under ``prefix`` (already validated)."""

    def __init__(self, bucket: Bucket, prefix: str) -> None:
        self._s3 = bucket
        self._prefix = prefix

    @property
    def bucket(self) -> str:
        return self._s3.name

    @property
    def prefix(self) -> str:
        return self._prefix

    def head(
        self, key: str, version_id: str | None = None, *, with_tags: bool = False
    ) -> ObjectInfo | None:
        """What S3 says about an object (version); None if it does not exist."""
        with self._s3.translated("HeadObject", key, needs="s3:GetObject / s3:GetObjectVersion"):
            head = self._s3.head(key, version_id, checksum=True)
            if head is None:
                return None
            info = object_info(key, head)
            if with_tags:
                tags = self._s3.tags(key, info.version_id)
                info = dataclasses.replace(info, tags=tags)
        return info

    def iter_objects(
        self, prefix: str | None = None, *, page_size: int = 1000
    ) -> Iterator[ObjectSummary]:
        """Every object under ``prefix`` (default: this store's prefix), page by page."""
        if prefix is None:
            prefix = f"{self._prefix}/" if self._prefix else ""
        paginator = self._s3.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self._s3.name, Prefix=prefix, PaginationConfig={"PageSize": page_size}
        )
        with self._s3.translated("ListObjectsV2", prefix, needs="s3:ListBucket"):
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectSummary(
                        key=item.get("Key", ""),
                        size=item.get("Size", 0),
                        etag=item.get("ETag", "").strip('"'),
                        last_modified=item.get("LastModified"),
                    )

    def iter_versions(
        self, prefix: str | None = None, *, page_size: int = 1000
    ) -> Iterator[ObjectVersion]:
        """Every object version and delete marker under ``prefix`` (default: this store's
        prefix), streamed page by page (S3's ListObjectVersions).

        Keys come in ascending order, one key's entries consecutive (a caller can group
        them holding one key at a time); within a key the latest entry (what a GET
        answers) comes first, then the versions newest first.  A delete marker's place
        among versions written in the same second is not known (S3 lists times to the
        second), only whether it is the latest."""
        if prefix is None:
            prefix = f"{self._prefix}/" if self._prefix else ""
        paginator = self._s3.client.get_paginator("list_object_versions")
        pages = paginator.paginate(
            Bucket=self._s3.name, Prefix=prefix, PaginationConfig={"PageSize": page_size}
        )
        with self._s3.translated("ListObjectVersions", prefix, needs="s3:ListBucketVersions"):
            for page in pages:
                # A page holds versions and delete markers in two lists, each in S3's
                # order (by key, newest first); they are merged here by key and time, the
                # sort being stable so that each list keeps its own order.
                entries = [
                    ObjectVersion(
                        key=item.get("Key", ""),
                        version_id=version_of(item),
                        is_latest=bool(item.get("IsLatest")),
                        delete_marker=False,
                        size=item.get("Size", 0),
                        etag=item.get("ETag", "").strip('"'),
                        last_modified=item.get("LastModified"),
                    )
                    for item in page.get("Versions", [])
                ]
                entries += [
                    ObjectVersion(
                        key=item.get("Key", ""),
                        version_id=version_of(item),
                        is_latest=bool(item.get("IsLatest")),
                        delete_marker=True,
                        size=0,
                        etag="",
                        last_modified=item.get("LastModified"),
                    )
                    for item in page.get("DeleteMarkers", [])
                ]
                entries.sort(key=_listing_order)
                yield from entries

    def download(self, key: str, sink: Sink, *, version_id: str | None = None) -> int:
        """Stream an object (version) into ``sink`` 1 MiB at a time; return the byte count."""
        version = version_arg(version_id)
        written = 0
        with self._s3.translated("GetObject", key, needs="s3:GetObject / s3:GetObjectVersion"):
            try:
                response = self._s3.client.get_object(
                    Bucket=self._s3.name, Key=key, ChecksumMode="ENABLED", **version
                )
            except ClientError as exc:
                if http_status(exc) != 404:
                    raise
                raise VerificationFailed(
                    f"s3://{self._s3.name}/{key} (version {version_id or 'latest'}) does not exist",
                    s3_key=key,
                ) from exc
            body = response["Body"]
            try:
                for chunk in body.iter_chunks(CHUNK_SIZE):
                    written += sink.write(chunk)
            finally:
                body.close()
        return written

    def hash_object(self, key: str, *, version_id: str | None = None) -> tuple[str, int]:
        """Stream an object (version) through SHA-256 without storing it: ``(hex, size)``.

        The deep check: HEAD shows what S3 recorded; this proves the bytes it returns.
        """
        sink = _HashingSink()
        self.download(key, sink, version_id=version_id)
        return sink.hash.hexdigest(), sink.size

    def read_document(self, key: str) -> tuple[bytes, str] | None:
        """A small document's bytes and ETag (for ``replace_document``); None if absent."""
        with self._s3.translated("GetObject", key, needs="s3:GetObject"):
            try:
                response = self._s3.client.get_object(Bucket=self._s3.name, Key=key)
            except ClientError as exc:
                if http_status(exc) == 404:
                    return None
                raise
            stream = response["Body"]
            try:
                body = stream.read()
            finally:
                stream.close()
        return body, response["ETag"]

    def read_sidecar(self, key: str) -> dict[str, Any] | None:
        """The ``.json`` sidecar an earlier version wrote beside the object at ``key``, as a
        dict, or None if there is none (this version writes none: the object carries its
        custody facts as metadata)."""
        with self._s3.translated("GetObject", sidecar_key(key), needs="s3:GetObject"):
            try:
                document = read_json(self._s3, sidecar_key(key), None)
            except ClientError as exc:
                if http_status(exc) == 404:
                    return None
                raise
        if not isinstance(document, dict):
            raise VerificationFailed(
                f"sidecar s3://{self._s3.name}/{sidecar_key(key)} is not a JSON object",
                s3_key=sidecar_key(key),
            )
        return document


def _listing_order(entry: ObjectVersion) -> tuple[str, bool, float]:
    """By key, then the latest entry, then newest first."""
    when = entry.last_modified.timestamp() if entry.last_modified else 0.0
    return entry.key, not entry.is_latest, -when


class _HashingSink:
    """A Sink that only hashes and counts (restartable, like HashingSpool)."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self.hash.update(data)
        self.size += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("can only seek(0) to restart")
        return 0

    def truncate(self, size: int | None = None, /) -> int:
        self.hash, self.size = hashlib.sha256(), 0
        return 0
