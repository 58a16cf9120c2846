"""Encryption at rest for personal and restricted values (DESIGN §7).

Values are sealed with AES-256-GCM under the data key, which lives outside the database
(``HOMECOMING_DATA_KEY``), so a copied database file alone reveals no names. Each value gets a fresh
random nonce: equal names do not produce equal ciphertexts, and encrypted columns cannot be searched
or sorted in SQL, which is why case codes, districts and other aggregate fields stay in clear.
"""

import base64
import json
import os
import re
from datetime import date

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text, TypeDecorator

_VERSIONED = re.compile(r"k(\d+):")
_ciphers: dict[int, AESGCM] = {}
_current: int | None = None


class DataKeyError(ValueError):
    pass


def _cipher_for(key: str, name: str) -> AESGCM:
    try:
        raw = base64.urlsafe_b64decode(key.encode())
    except (ValueError, AttributeError):
        raw = b""
    if len(raw) != 32:
        raise DataKeyError(f"{name} must be 32 random bytes in urlsafe base64 (44 characters)")
    return AESGCM(raw)


def configure(key: str, version: int = 1, older: dict[int, str] | None = None) -> None:
    """Install the key ring for this process: the current data key (urlsafe base64 of 32 bytes) with its
    version, and the older keys still needed to read values sealed before a rotation (docs/operations.md).
    New values are always sealed under the current key; a value's prefix (``k2:``) names its key."""
    global _ciphers, _current
    if not isinstance(version, int) or version < 1:
        raise DataKeyError(f"HOMECOMING_DATA_KEY_VERSION must be a whole number from 1, got {version!r}")
    ring = {v: _cipher_for(k, f"HOMECOMING_DATA_KEY_OLD (version {v})") for v, k in (older or {}).items()
            if v != version}
    ring[version] = _cipher_for(key, "HOMECOMING_DATA_KEY")
    _ciphers, _current = ring, version


def current_version() -> int:
    _require_cipher()
    return _current


def known_versions() -> list[int]:
    return sorted(_ciphers)


def prefix(version: int) -> str:
    return f"k{version}:"


def version_of(token: str) -> int | None:
    match = _VERSIONED.match(token)
    return int(match.group(1)) if match else None


def _require_cipher() -> AESGCM:
    if _current is None:
        raise DataKeyError("no data key configured: create the app (or call models.crypto.configure) first")
    return _ciphers[_current]


def seal(plaintext: str) -> str:
    nonce = os.urandom(12)
    sealed = _require_cipher().encrypt(nonce, plaintext.encode(), None)
    return prefix(_current) + base64.b64encode(nonce + sealed).decode()


def unseal(token: str) -> str:
    _require_cipher()
    version = version_of(token)
    if version is None:
        raise DataKeyError("value is not sealed with a known key version")
    cipher = _ciphers.get(version)
    if cipher is None:
        raise DataKeyError(f"value is sealed with data key version {version}, which is not configured: "
                           "add it to HOMECOMING_DATA_KEY_OLD or the key file (docs/operations.md)")
    blob = base64.b64decode(token[len(prefix(version)):])
    return cipher.decrypt(blob[:12], blob[12:], None).decode()


def reseal(token: str) -> str:
    """The same plaintext sealed under the current key (what key rotation writes back)."""
    return seal(unseal(token))


class EncryptedText(TypeDecorator):
    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else seal(self.encode(value))

    def process_result_value(self, value, dialect):
        return None if value is None else self.decode(unseal(value))

    def encode(self, value) -> str:
        return str(value)

    def decode(self, text: str):
        return text


class EncryptedDate(EncryptedText):
    cache_ok = True

    def encode(self, value) -> str:
        return value.isoformat()

    def decode(self, text: str):
        return date.fromisoformat(text)


class EncryptedJSON(EncryptedText):
    cache_ok = True

    def encode(self, value) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    def decode(self, text: str):
        return json.loads(text)
