"""Attachment files sealed at rest (docs/referrals.md, "Attachments", and docs/security.md).

Each file, and each upload in progress, has its own random 256-bit data key. The key is stored in the
database in an ``EncryptedText`` column, so it is wrapped by the master data key (models.crypto) and
re-wrapped by key rotation like every other sealed value; a copied disk or bucket alone opens nothing,
and erasing the wrapped key (retention) makes the file unreadable even where a copy survived.

A stored file is chunked AEAD, so neither writing nor reading needs the whole file in memory:

    "HCF1" | chunk size (4 bytes, big-endian) | chunk 0 | chunk 1 | ...

each chunk AES-256-GCM over at most ``CHUNK`` plaintext bytes, with the nonce made of its index and a
last-chunk flag (unique per key, and a file cut at a chunk boundary or reordered fails to open), and the
header plus the attachment id as associated data (a file moved under another id fails too).

An upload's parts are sealed one by one as they arrive (a part = one PATCH body), each with a random
nonce and its upload id, index and offset as associated data.
"""

import base64
import os
import struct
import uuid
from collections.abc import Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"HCF1"
CHUNK = 64 * 1024
TAG = 16


class FileDamaged(Exception):
    """A stored file failed its authentication: changed, truncated or under another id."""


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _cipher(key: str) -> AESGCM:
    return AESGCM(base64.urlsafe_b64decode(key))


def _nonce(index: int, last: bool) -> bytes:
    return struct.pack(">QI", index, 1 if last else 0)


def seal_stream(key: str, file_id: uuid.UUID, pieces: Iterable[bytes]) -> Iterator[bytes]:
    """Ciphertext for the plaintext ``pieces``, re-cut into ``CHUNK``-sized chunks."""
    cipher, header = _cipher(key), MAGIC + struct.pack(">I", CHUNK)
    aad = header + file_id.bytes
    yield header
    buffer, index = b"", 0
    for piece in pieces:
        buffer += piece
        while len(buffer) > CHUNK:  # keep at least one byte back: the last chunk must be flagged
            yield cipher.encrypt(_nonce(index, False), buffer[:CHUNK], aad)
            buffer, index = buffer[CHUNK:], index + 1
    yield cipher.encrypt(_nonce(index, True), buffer, aad)


def open_stream(key: str, file_id: uuid.UUID, source) -> Iterator[bytes]:
    """The plaintext of a stored file, chunk by chunk, from a binary file object."""
    cipher = _cipher(key)
    header = source.read(8)
    if len(header) != 8 or header[:4] != MAGIC:
        raise FileDamaged("not an attachment file")
    size = struct.unpack(">I", header[4:])[0] + TAG
    aad = header + file_id.bytes
    index, current = 0, _read_exactly(source, size)
    while True:
        following = _read_exactly(source, size)
        last = not following
        try:
            yield cipher.decrypt(_nonce(index, last), current, aad)
        except InvalidTag:
            raise FileDamaged("an attachment file failed its authentication") from None
        if last:
            return
        index, current = index + 1, following


def _read_exactly(source, size: int) -> bytes:
    parts, wanted = [], size
    while wanted:
        data = source.read(wanted)
        if not data:
            break
        parts.append(data)
        wanted -= len(data)
    return b"".join(parts)


def _part_aad(upload_id: uuid.UUID, index: int, offset: int) -> bytes:
    return upload_id.bytes + struct.pack(">IQ", index, offset)


def seal_part(key: str, upload_id: uuid.UUID, index: int, offset: int, data: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + _cipher(key).encrypt(nonce, data, _part_aad(upload_id, index, offset))


def open_part(key: str, upload_id: uuid.UUID, index: int, offset: int, blob: bytes) -> bytes:
    try:
        return _cipher(key).decrypt(blob[:12], blob[12:], _part_aad(upload_id, index, offset))
    except InvalidTag:
        raise FileDamaged("an upload's part failed its authentication") from None
