"""How the reference client keeps personal and restricted values ciphertext at rest (issue 8, finding 4).

A lost or seized phone must not give up the children on it. Every JSON value the store keeps (a
record's server copy and view, an outbox or failed mutation's fields, a rejection's message) is split
by the sensitivity classes of DESIGN §3: the fields the server marks ``aggregate`` stay readable (the
client needs nothing else in clear, and they are what any de-identified report shows), and every other
field -- personal, restricted, or one this client does not know -- is sealed with AES-256-GCM under a
key derived from the device passphrase or PIN. Unknown fields are sealed, not left in clear, so a field
the server adds later is protected before this list learns of it.

The key: scrypt (n=2**15, r=8, p=1: 32 MiB and ~0.1 s on a 2020 laptop core, once per open) over the
passphrase and a random 16-byte salt kept in the store. The parameters are stored beside the salt, so
a later client can raise them for new stores and still open old ones. A check value sealed under the
key tells a wrong passphrase apart from a damaged store. Each sealed value is bound (GCM associated
data) to its entity and record id, so ciphertext cannot be moved from one record to another.

A short PIN is only as strong as scrypt makes guessing it against a copied file (10^6 six-digit PINs at
0.1 s each is about a CPU-day): a phone app should wrap this key with the platform keystore
(hardware-backed, with an attempt limit) rather than rely on the PIN alone. See docs/sync-protocol.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import unicodedata

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# The fields each entity may keep in clear: exactly the columns models/ marks ``aggregate`` (a test
# keeps the lists equal). Everything else a record holds is sealed.
PLAIN_FIELDS = {
    "child": frozenset((
        "case_code", "sex", "birth_year", "age_estimation_method", "district", "identified_on",
        "risk_level", "child_mother", "disability", "unaccompanied", "stage", "stage_since",
        "needs_review", "id", "version", "seq", "created_at", "updated_at", "recorded_at", "deleted_at",
        "deidentified_at", "merged_into", "agency_id")),
    "consent": frozenset((
        "purpose", "given_by", "given_on", "withdrawn_on", "child_id", "id", "version", "seq",
        "created_at", "updated_at", "recorded_at", "deleted_at")),
    "stage_transition": frozenset((
        "from_stage", "to_stage", "occurred_on", "closure_reason", "actor_id", "child_id", "id",
        "version", "seq", "created_at", "updated_at", "recorded_at", "deleted_at")),
    "assessment": frozenset((
        "kind", "assessed_on", "risk_level", "child_id", "id", "version", "seq", "created_at",
        "updated_at", "recorded_at", "deleted_at")),
    "service": frozenset((
        "type", "status", "started_on", "ended_on", "child_id", "id", "version", "seq", "created_at",
        "updated_at", "recorded_at", "deleted_at")),
    "followup": frozenset((
        "kind", "due_on", "status", "completed_on", "seen", "not_seen_reason", "wellbeing", "risk_level",
        "concerns", "planned_by_rule", "child_id", "id", "version", "seq", "created_at", "updated_at",
        "recorded_at", "deleted_at")),
    "alert": frozenset((
        "key", "rule", "severity", "child_id", "followup_id", "recipient_id", "due_on", "status",
        "acknowledged_by_id", "resolved_by_id", "id", "version", "seq", "created_at", "updated_at",
        "recorded_at", "deleted_at")),
    "referral": frozenset((
        "child_id", "service_type", "agency_id", "status", "sent_on", "consent_overridden", "created_by_id",
        "id", "version", "seq", "created_at", "updated_at", "recorded_at", "deleted_at")),
    "tracing_request": frozenset((
        "status", "inquirer_relationship", "sex", "birth_year", "district", "id", "version", "seq",
        "created_at", "updated_at", "recorded_at", "deleted_at")),
    "trace": frozenset((
        "request_id", "kind", "done_on", "actor_id", "id", "version", "seq", "created_at", "updated_at",
        "recorded_at", "deleted_at")),
}

# scrypt cost for new stores (RFC 7914 names). 32 MiB of memory makes guessing on a GPU expensive.
SCRYPT = {"n": 2 ** 15, "r": 8, "p": 1}
SALT_BYTES = 16
MIN_PASSPHRASE = 6  # a six-digit PIN at least; see the module docstring on what a PIN is worth
SEALED_KEY = "_sealed"  # the one key of a stored JSON object that is not a field: the sealed fields
CHECK = b"homecoming reference client store, key check"


class WrongPassphrase(Exception):
    """The passphrase does not open this store. Nothing was read or changed."""


def new_kdf() -> dict:
    return {"alg": "scrypt", **SCRYPT, "salt": base64.b64encode(os.urandom(SALT_BYTES)).decode()}


def derive_key(passphrase: str, kdf: dict) -> bytes:
    if kdf.get("alg") != "scrypt":
        raise ValueError(f"unknown key derivation {kdf.get('alg')!r}")
    # NFC: the same PIN or passphrase typed on two keyboards gives the same bytes.
    secret = unicodedata.normalize("NFC", passphrase).encode()
    n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
    return hashlib.scrypt(secret, salt=base64.b64decode(kdf["salt"]), n=n, r=r, p=p,
                          maxmem=2 * 128 * r * n + 2 ** 20, dklen=32)


class StoreCipher:
    """Seals and opens the store's values under one key (held in memory only while the store is open)."""

    def __init__(self, key: bytes):
        self._aead = AESGCM(key)

    # -- raw values

    def seal(self, plaintext: bytes, aad: bytes) -> str:
        nonce = os.urandom(12)  # random 96-bit nonces: safe far beyond the 2**32 values a phone seals
        return base64.b64encode(nonce + self._aead.encrypt(nonce, plaintext, aad)).decode()

    def open(self, sealed: str, aad: bytes) -> bytes:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], aad)

    def make_check(self) -> str:
        return self.seal(CHECK, b"check")

    def verify(self, check: str) -> None:
        try:
            if self.open(check, b"check") == CHECK:
                return
        except (InvalidTag, ValueError):
            pass
        raise WrongPassphrase("Wrong passphrase for this device's store.")

    # -- a record's fields, as the store keeps them

    def seal_fields(self, entity: str, record_id: str, fields: dict) -> str:
        """JSON text: the aggregate fields in clear, every other field sealed under ``_sealed``."""
        plain_names = PLAIN_FIELDS.get(entity, frozenset())
        plain, secret = {}, {}
        for name, value in fields.items():
            (plain if name in plain_names else secret)[name] = value
        if secret:
            plain[SEALED_KEY] = self.seal(json.dumps(secret, separators=(",", ":")).encode(),
                                          _aad(entity, record_id))
        return json.dumps(plain, separators=(",", ":"))

    def open_fields(self, entity: str, record_id: str, stored: str) -> dict:
        fields = json.loads(stored)
        sealed = fields.pop(SEALED_KEY, None)
        if sealed is not None:
            fields.update(json.loads(self.open(sealed, _aad(entity, record_id))))
        return fields

    def seal_value(self, entity: str, record_id: str, value) -> str | None:
        """Any JSON value sealed whole (a rejection's message and error details may echo what was sent)."""
        if value is None:
            return None
        return self.seal(json.dumps(value).encode(), _aad(entity, record_id))

    def open_value(self, entity: str, record_id: str, stored: str | None):
        return None if stored is None else json.loads(self.open(stored, _aad(entity, record_id)))


def _aad(entity: str, record_id: str) -> bytes:
    return f"{entity}/{record_id}".encode()
