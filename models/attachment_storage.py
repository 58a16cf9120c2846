"""Where attachment files live: outside the database, as ciphertext only (docs/referrals.md).

Two backends with one interface: a folder (the default, ``HOMECOMING_ATTACHMENT_DIR``) and an
S3-compatible bucket through boto3 (``HOMECOMING_ATTACHMENT_S3_BUCKET``; endpoint, region and
credentials the usual AWS way, so MinIO, Ceph or Garage work as well as AWS). Neither ever sees a
plaintext byte: models/attachment_files.py seals before ``write`` and opens after ``open``.

Like the data key (models.crypto), the store is configured once per process, by the app factory, so
retention and the CLI reach the same files as the web.
"""

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


class FolderStorage:
    def __init__(self, root):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if ".." in key.split("/") or key.startswith("/"):
            raise ValueError(f"bad storage key {key!r}")
        return self.root / key

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        """Write atomically (a temporary file renamed into place), readable by this user only."""
        path = self._path(key)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def open(self, key: str):
        return self._path(key).open("rb")

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        folder = self._path(prefix.rstrip("/"))
        if folder.is_dir():
            for path in folder.iterdir():
                path.unlink(missing_ok=True)
            folder.rmdir()


class S3Storage:
    def __init__(self, bucket: str, prefix: str = "", client=None, endpoint_url: str | None = None):
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint_url or None)
        self.client, self.bucket, self.prefix = client, bucket, prefix

    def _key(self, key: str) -> str:
        return self.prefix + key

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        # Ciphertext only, spooled (in memory up to 8 MiB, then a temporary file) for boto3's
        # multipart upload, which needs a seekable file.
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            for chunk in chunks:
                spool.write(chunk)
            spool.seek(0)
            self.client.upload_fileobj(spool, self.bucket, self._key(key))

    def open(self, key: str):
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]

    def read(self, key: str) -> bytes:
        with self.open(key) as body:
            return body.read()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> None:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix))
        for page in pages:
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})


_store = None


def configure(settings: dict) -> None:
    """From the app's settings: S3 when a bucket is named, else the folder."""
    global _store
    if settings.get("ATTACHMENT_S3_BUCKET"):
        _store = S3Storage(settings["ATTACHMENT_S3_BUCKET"], settings.get("ATTACHMENT_S3_PREFIX") or "",
                           endpoint_url=settings.get("ATTACHMENT_S3_ENDPOINT"))
    else:
        _store = FolderStorage(settings["ATTACHMENT_DIR"])


def use(store) -> None:
    """Install a store directly (tests, or a programme's own backend)."""
    global _store
    _store = store


def current():
    if _store is None:
        raise RuntimeError("no attachment store configured: create the app first")
    return _store
