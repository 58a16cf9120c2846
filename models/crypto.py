"""Encryption at rest for personal and restricted values (DESIGN §7).

Values are sealed with AES-256-GCM under the data key, which lives outside the database
(``HOMECOMING_DATA_KEY``), so a copied database file alone reveals no names. Each value gets a fresh
random nonce: equal names do not produce equal ciphertexts, and encrypted columns cannot be searched
or sorted in SQL, which is why case codes, districts and other aggregate fields stay in clear.
"""

import base64
import json
import os
from datetime import date

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text, TypeDecorator

_PREFIX = "k1:"
_cipher: AESGCM | None = None


class DataKeyError(ValueError):
    pass


def configure(key: str) -> None:
    """Install the data key (urlsafe base64 of 32 bytes) for this process."""
    global _cipher
    try:
        raw = base64.urlsafe_b64decode(key.encode())
    except (ValueError, AttributeError):
        raw = b""
    if len(raw) != 32:
        raise DataKeyError("HOMECOMING_DATA_KEY must be 32 random bytes in urlsafe base64 (44 characters)")
    _cipher = AESGCM(raw)


def _require_cipher() -> AESGCM:
    if _cipher is None:
        raise DataKeyError("no data key configured: create the app (or call models.crypto.configure) first")
    return _cipher


def seal(plaintext: str) -> str:
    nonce = os.urandom(12)
    sealed = _require_cipher().encrypt(nonce, plaintext.encode(), None)
    return _PREFIX + base64.b64encode(nonce + sealed).decode()


def unseal(token: str) -> str:
    if not token.startswith(_PREFIX):
        raise DataKeyError("value is not sealed with a known key version")
    blob = base64.b64decode(token[len(_PREFIX):])
    return _require_cipher().decrypt(blob[:12], blob[12:], None).decode()


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
