"""The reference offline-first field client for sync protocol 1 (DESIGN §5, docs/sync-protocol.md).

It is deliberately small and uses the standard library (sqlite3, urllib, gzip, json, hashlib) and one
package, ``cryptography``, for AES-GCM (a phone app uses its platform's AES-GCM), so that whoever writes
the phone app can read it as executable documentation. It never imports the server's code: everything it
knows about the server comes over HTTP.

What the device keeps, in one SQLite file, with every personal and restricted value sealed under a key
derived from the device passphrase (sync/client_cipher.py; opening the store needs the passphrase):

- ``record``: every record the device can see, by (entity, id), with the server ``version`` it last
  saw, the server's copy (``server_data``) and the copy the user sees (``data`` = the server's copy
  with the device's own unsent edits laid on top).
- ``outbox``: mutations not yet settled, in the order they were made. Each has a ``mutation_id``
  chosen when it is made, and gets a ``batch_id`` when it is first sent; a retried batch is sent again
  byte for byte with the same ids, so the server replays its stored answer instead of applying twice.
- ``failed``: mutations the server permanently rejected. They stay visible (``failed()``) until the
  user fixes (``resubmit``) or drops (``dismiss``) them, and never block the rest of the queue. Their
  restricted fields are erased ``keep_rejected_restricted`` (7 days) after the rejection.
- ``conflict``: mutations the server kept as conflicts for a person to resolve on the web.
- ``meta``: the pull cursor, stored in the same transaction as the page it follows; the scrypt salt and
  parameters (``kdf``) and a value sealed under the key (``key_check``) that tells a wrong passphrase.

Usage::

    client = SyncClient("https://homecoming.example/", token, "/data/homecoming.sqlite",
                        passphrase=pin_or_passphrase)
    child_id = client.record("child", {"sex": "female", "given_name": "..."})
    client.record("child", {"risk_level": "high"}, id=child_id)
    report = client.sync()
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import random
import sqlite3
import time
import urllib.error
import urllib.request
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sync.client_cipher import MIN_PASSPHRASE, StoreCipher, derive_key, new_kdf
from sync.client_cipher import WrongPassphrase as WrongPassphrase  # raised by SyncClient(), re-exported

PROTOCOL = 1
ENTITIES = ("child", "consent", "stage_transition", "assessment", "service", "followup", "alert", "referral",
            "tracing_request", "trace")

# Entities whose updates are lifecycle steps, each sent as its own mutation (see _enqueue).
STEPPED = ("referral",)

# The CAAFAG profile (DESIGN §3 "restricted"). The server never sends these to a device; the device
# may collect them offline but must not keep them once the server has them. Mirrors the columns of
# models.children.Child and models.tracing.TracingRequest marked restricted (a test keeps them equal).
RESTRICTED_FIELDS = {
    "child": (
        "armed_group", "role_in_group", "recruitment", "date_joined", "date_left", "how_left",
        "sexual_violence", "restricted_notes",
    ),
    "tracing_request": ("armed_group",),
}


def parent_of(entity: str, record_id: str, data: dict) -> str | None:
    """What the store's ``child_id`` column holds: the record a record belongs to, so that a parent's
    records are listed (``records(entity, parent)``) and removed with it. A child is its own; a trace
    belongs to its tracing request; a tracing request to nothing."""
    if entity == "child":
        return record_id
    return data.get("request_id") if entity == "trace" else data.get("child_id")

# A child's case code is derived from its id, so a phone shows it the moment the child is registered
# offline (the server derives the same one). Mirrors models.children.case_code_for; a test keeps them
# equal. Letters and digits that cannot be confused when read aloud: no 0/O, 1/I/L, U/V.
CASE_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"


def case_code_for(child_id: str) -> str:
    """The 40 highest bits of the UUID as eight base-29 digits, least significant first: XXXX-XXXX."""
    n = uuid.UUID(str(child_id)).int >> 88
    chars = []
    for _ in range(8):
        n, r = divmod(n, len(CASE_CODE_ALPHABET))
        chars.append(CASE_CODE_ALPHABET[r])
    return f"{''.join(chars[:4])}-{''.join(chars[4:])}"


# Results of a push that settle a mutation for good.
SETTLED = ("applied", "duplicate", "conflict")

SCHEMA = """
CREATE TABLE IF NOT EXISTS record (
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    child_id TEXT,
    version INTEGER NOT NULL DEFAULT 0,      -- server version last seen; 0 = not on the server yet
    server_data TEXT NOT NULL DEFAULT '{}',  -- JSON: the server's copy
    data TEXT NOT NULL,                      -- JSON: what the user sees (server copy + unsent edits)
    pulled_gen INTEGER NOT NULL DEFAULT 0,   -- full-pull generation that last confirmed it
    PRIMARY KEY (entity, id)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- creation order: pushed oldest first
    mutation_id TEXT NOT NULL UNIQUE,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    op TEXT NOT NULL,                        -- create | update
    base_version INTEGER NOT NULL,
    fields TEXT NOT NULL,                    -- JSON: only the fields this mutation sets
    recorded_at TEXT NOT NULL,
    batch_id TEXT                            -- set when first sent; NULL = may still be merged into
);
CREATE TABLE IF NOT EXISTS failed (
    mutation_id TEXT PRIMARY KEY,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    op TEXT NOT NULL,
    fields TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT,
    errors TEXT,
    failed_at TEXT NOT NULL,
    restricted_erased_at TEXT                -- when its restricted fields were erased (NULL = not yet)
);
CREATE TABLE IF NOT EXISTS conflict (
    conflict_id TEXT PRIMARY KEY,
    mutation_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    fields TEXT NOT NULL                     -- JSON list of the fields waiting for a person
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
-- Every edit and every answer looks up the outbox by record: without these, queueing is quadratic.
CREATE INDEX IF NOT EXISTS outbox_record ON outbox (entity, record_id);
CREATE INDEX IF NOT EXISTS outbox_batch ON outbox (batch_id);
CREATE INDEX IF NOT EXISTS failed_record ON failed (entity, record_id);
CREATE INDEX IF NOT EXISTS record_child ON record (child_id);
"""


class SyncError(Exception):
    """Sync stopped; the outbox is intact and the next ``sync()`` carries on where this one stopped."""


class Offline(SyncError):
    """The server could not be reached (or kept answering 5xx) after every retry."""


class Unauthorized(SyncError):
    """401: the token is wrong. Retrying cannot help; the device must be enrolled again."""


class DeviceRevoked(SyncError):
    """403 device_revoked. With ``wipe`` the local store has already been deleted."""

    def __init__(self, message: str, wipe: bool):
        super().__init__(message)
        self.wipe = wipe


class ProtocolError(SyncError):
    """The server answered something this client does not understand (a bug on one side)."""


class AttachmentRefused(SyncError):
    """The server refused an upload (its type, size, hash or content); ``code`` says which."""

    def __init__(self, status: int, code: str | None, message: str):
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code = status, code


@dataclass
class Response:
    status: int
    headers: dict
    body: dict | None


@dataclass
class SyncReport:
    pushed: int = 0
    applied: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    pulled: int = 0
    removed: int = 0
    pages: int = 0
    retries: int = 0
    resynced: bool = False
    failed_ids: list = field(default_factory=list)


class UrllibTransport:
    """HTTP over urllib. Returns ``(status, headers, raw body)``; raises ``OSError`` when the network
    fails (refused, reset, timed out, or the server died half-way through its answer)."""

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout

    def __call__(self, method: str, url: str, headers: dict, body: bytes | None):
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as exc:  # a 4xx/5xx is an answer, not a network failure
            try:
                raw = exc.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            return exc.code, dict(exc.headers.items()), raw
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException) as exc:
            raise OSError(f"network: {exc}") from exc


# How long restricted fields of a rejected mutation stay on the device for the user to fix and resubmit
# (DESIGN §3 wants them gone once the server has them; a rejection means it never will). A week covers a
# field trip without signal and the next office visit; after that the user types them again.
KEEP_REJECTED_RESTRICTED = timedelta(days=7)


class SyncClient:
    def __init__(self, base_url: str, token: str, path: str, *, passphrase: str, transport=None,
                 batch_size: int = 200, page_size: int = 500, max_attempts: int = 8, backoff_base: float = 0.5,
                 backoff_cap: float = 30.0, sleep=time.sleep, rng: random.Random | None = None,
                 clock=None, keep_rejected_restricted: timedelta = KEEP_REJECTED_RESTRICTED):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.path = str(path)
        self.transport = transport or UrllibTransport()
        self.batch_size = batch_size
        self.page_size = page_size
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.clock = clock or (lambda: datetime.now(UTC))  # injectable: tests move time forward
        self.keep_rejected_restricted = keep_rejected_restricted
        self.db = self._open(passphrase)
        self.erase_expired()

    # ------------------------------------------------------------------ local store

    def _open(self, passphrase: str) -> sqlite3.Connection:
        # isolation_level=None: this code says BEGIN/COMMIT itself, so each step is one transaction.
        # check_same_thread=False: a client may be handed from thread to thread (one at a time, never
        # concurrently), as a phone app's background sync worker does.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            # No WAL: a -wal file keeps old page images (restricted values dropped after upload among
            # them) until a checkpoint, and secure_delete does not reach it. A rollback journal lives
            # only for one transaction and is deleted at its commit. Switching an old WAL store to
            # DELETE checkpoints and removes its -wal.
            conn.execute("PRAGMA journal_mode=DELETE")
            # Deleted rows are overwritten with zeros, so restricted fields dropped after upload cannot be
            # read back from free pages of a seized or lost phone.
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA temp_store=MEMORY")  # sorts and temporary tables never touch the disk
            conn.executescript(SCHEMA)
            self.cipher = self._unlock(conn, passphrase)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _unlock(conn: sqlite3.Connection, passphrase: str) -> StoreCipher:
        """The store's key, derived once per open. A new store gets a fresh salt; an existing one is
        opened only by its passphrase (``WrongPassphrase`` otherwise)."""
        if not isinstance(passphrase, str) or not passphrase:
            raise ValueError("A passphrase (or device PIN) is needed to open the local store.")
        row = conn.execute("SELECT value FROM meta WHERE key = 'kdf'").fetchone()
        if row is not None:
            cipher = StoreCipher(derive_key(passphrase, json.loads(row["value"])))
            check = conn.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
            cipher.verify(check["value"] if check else "")
            return cipher
        if conn.execute("SELECT 1 FROM record UNION ALL SELECT 1 FROM outbox LIMIT 1").fetchone():
            raise ValueError("This store was written by an older client without encryption; "
                             "sync it with that client, then start from an empty store.")
        if len(passphrase) < MIN_PASSPHRASE:
            raise ValueError(f"The passphrase (or device PIN) must have at least {MIN_PASSPHRASE} characters.")
        kdf = new_kdf()
        cipher = StoreCipher(derive_key(passphrase, kdf))
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO meta (key, value) VALUES ('kdf', ?), ('key_check', ?)",
                     (json.dumps(kdf), cipher.make_check()))
        conn.execute("COMMIT")
        return cipher

    def _now_iso(self, ago: timedelta = timedelta(0)) -> str:
        # Always UTC, so stored times compare as strings whatever zone the clock answers in.
        return (self.clock() - ago).astimezone(UTC).isoformat(timespec="seconds")

    def erase_expired(self) -> int:
        """Erase the restricted fields of mutations rejected more than ``keep_rejected_restricted`` ago,
        from ``failed`` and from the record the user sees (a rejected create's only copy). Runs at every
        open and every sync; returns how many rejections it erased. ``failed()`` marks them with
        ``restricted_erased_at``: the user types those fields again before resubmitting."""
        if self.db is None:
            return 0
        entities = tuple(RESTRICTED_FIELDS)
        rows = self.db.execute(
            f"SELECT mutation_id, entity, record_id, fields FROM failed WHERE restricted_erased_at IS NULL"
            f" AND failed_at <= ? AND entity IN ({', '.join('?' * len(entities))})",
            (self._now_iso(self.keep_rejected_restricted), *entities)).fetchall()
        if not rows:
            return 0
        now = self._now_iso()
        self._begin()
        try:
            for row in rows:
                entity, record_id, names = row["entity"], row["record_id"], RESTRICTED_FIELDS[row["entity"]]
                fields = self._unseal(entity, record_id, row["fields"])
                kept = {k: v for k, v in fields.items() if k not in names}
                self.db.execute("UPDATE failed SET fields = ?, restricted_erased_at = ? WHERE mutation_id = ?",
                                (self._seal(entity, record_id, kept), now, row["mutation_id"]))
                self._drop_uploaded_restricted(entity, record_id)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return len(rows)

    # Every JSON value a table keeps goes through these two: aggregate fields in clear, the rest sealed.
    def _seal(self, entity: str, record_id: str, fields: dict) -> str:
        return self.cipher.seal_fields(entity, record_id, fields)

    def _unseal(self, entity: str, record_id: str, stored: str) -> dict:
        return self.cipher.open_fields(entity, record_id, stored)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        self.cipher = None  # the key leaves with the store: reopening needs the passphrase again

    def _begin(self):
        self.db.execute("BEGIN IMMEDIATE")

    def _meta(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default

    def _set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @property
    def cursor(self) -> str | None:
        return self._meta("cursor")

    def get(self, entity: str, id: str) -> dict | None:
        """The record as the user sees it (with unsent edits), or None."""
        row = self.db.execute("SELECT data FROM record WHERE entity = ? AND id = ?", (entity, str(id))).fetchone()
        return self._unseal(entity, str(id), row["data"]) if row else None

    def version(self, entity: str, id: str) -> int | None:
        row = self.db.execute("SELECT version FROM record WHERE entity = ? AND id = ?", (entity, str(id))).fetchone()
        return row["version"] if row else None

    def records(self, entity: str, child_id: str | None = None) -> list[dict]:
        sql, args = "SELECT id, data FROM record WHERE entity = ?", [entity]
        if child_id is not None:
            sql, args = sql + " AND child_id = ?", [*args, str(child_id)]
        return [self._unseal(entity, r["id"], r["data"]) for r in self.db.execute(sql + " ORDER BY id", args)]

    def pending(self) -> list[dict]:
        """Mutations not yet settled by the server, oldest first."""
        return [self._outbox_dict(r) for r in self.db.execute("SELECT * FROM outbox ORDER BY seq")]

    def failed(self) -> list[dict]:
        """Mutations the server rejected for good; shown to the user to fix or dismiss."""
        rows = self.db.execute("SELECT * FROM failed ORDER BY failed_at, mutation_id")
        return [{**dict(r), "fields": self._unseal(r["entity"], r["record_id"], r["fields"]),
                 "message": self.cipher.open_value(r["entity"], r["record_id"], r["message"]),
                 "errors": self.cipher.open_value(r["entity"], r["record_id"], r["errors"])} for r in rows]

    def conflicts(self) -> list[dict]:
        rows = self.db.execute("SELECT * FROM conflict ORDER BY conflict_id")
        return [{**dict(r), "fields": json.loads(r["fields"])} for r in rows]

    def _outbox_dict(self, row) -> dict:
        return {**dict(row), "fields": self._unseal(row["entity"], row["record_id"], row["fields"])}

    # ------------------------------------------------------------------ editing offline

    def record(self, entity: str, fields: dict, *, id: str | None = None, op: str | None = None) -> str:
        """Create or change a record offline; returns its id.

        Without ``id`` (or with ``op="create"``) this is a create, with a new UUID unless one is given.
        Otherwise it is an update carrying only the fields that differ from what the device shows, and
        the ``base_version`` the device last saw. Nothing is sent until ``sync()``.
        """
        if entity not in ENTITIES:
            raise ValueError(f"entity must be one of {', '.join(ENTITIES)}")
        fields = json.loads(json.dumps(fields))  # plain JSON values only, copied
        self._begin()
        try:
            row = self.db.execute("SELECT * FROM record WHERE entity = ? AND id = ?",
                                  (entity, str(id))).fetchone() if id else None
            if op == "create" or row is None:
                if row is not None:
                    raise ValueError(f"{entity} {id} already exists on this device")
                if op == "update":
                    raise ValueError(f"no {entity} {id} on this device to update")
                record_id = str(id or uuid.uuid4())
                self._enqueue(entity, record_id, "create", 0, fields)
                shown = {**fields, "id": record_id}
                if entity == "child":
                    shown["case_code"] = case_code_for(record_id)
                self.db.execute(
                    "INSERT INTO record (entity, id, child_id, version, server_data, data) VALUES (?, ?, ?, 0, '{}', ?)",
                    (entity, record_id, parent_of(entity, record_id, fields), self._seal(entity, record_id, shown)))
            else:
                record_id = row["id"]
                shown = self._unseal(entity, record_id, row["data"])
                changed = {k: v for k, v in fields.items() if shown.get(k) != v}
                if changed:
                    self._enqueue(entity, record_id, "update", row["version"], changed)
                    self.db.execute("UPDATE record SET data = ? WHERE entity = ? AND id = ?",
                                    (self._seal(entity, record_id, {**shown, **changed}), entity, record_id))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return record_id

    def _enqueue(self, entity, record_id, op, base_version, fields) -> None:
        # At most one unsent mutation per record: a second edit before the first was sent is merged
        # into it. Two queued updates with the same base would make the server see the device's own
        # first edit as someone else's change and report a conflict against itself. A referral's update
        # is a lifecycle step, checked against the server's status rather than merged from a base: each
        # step is queued as its own mutation (sent, then accepted, offline).
        unsent = self.db.execute(
            "SELECT seq, fields FROM outbox WHERE entity = ? AND record_id = ? AND batch_id IS NULL",
            (entity, record_id)).fetchone()
        if unsent is not None and entity not in STEPPED:
            merged = {**self._unseal(entity, record_id, unsent["fields"]), **fields}
            self.db.execute("UPDATE outbox SET fields = ?, recorded_at = ? WHERE seq = ?",
                            (self._seal(entity, record_id, merged), self._now_iso(), unsent["seq"]))
            return
        self.db.execute(
            "INSERT INTO outbox (mutation_id, entity, record_id, op, base_version, fields, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (str(uuid.uuid4()), entity, record_id, op, base_version, self._seal(entity, record_id, fields),
             self._now_iso()))

    def resubmit(self, mutation_id: str, fields: dict | None = None) -> str:
        """Send a failed mutation again, corrected, under a new mutation_id (the old id is spent:
        the server would answer ``duplicate``). Returns the new mutation_id."""
        row = self.db.execute("SELECT * FROM failed WHERE mutation_id = ?", (mutation_id,)).fetchone()
        if row is None:
            raise KeyError(mutation_id)
        new_fields = {**self._unseal(row["entity"], row["record_id"], row["fields"]), **(fields or {})}
        self._begin()
        try:
            self.db.execute("DELETE FROM failed WHERE mutation_id = ?", (mutation_id,))
            base = self.db.execute("SELECT version FROM record WHERE entity = ? AND id = ?",
                                   (row["entity"], row["record_id"])).fetchone()
            self._enqueue(row["entity"], row["record_id"], row["op"], base["version"] if base else 0, new_fields)
            new_id = self.db.execute("SELECT mutation_id FROM outbox WHERE entity = ? AND record_id = ? "
                                     "AND batch_id IS NULL", (row["entity"], row["record_id"])).fetchone()[0]
            self._refresh_view(row["entity"], row["record_id"], extra=new_fields)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return new_id

    def dismiss(self, mutation_id: str) -> None:
        """Drop a failed mutation; the record shows the server's copy again."""
        self._begin()
        row = self.db.execute("SELECT entity, record_id, op FROM failed WHERE mutation_id = ?",
                              (mutation_id,)).fetchone()
        self.db.execute("DELETE FROM failed WHERE mutation_id = ?", (mutation_id,))
        if row is not None:
            self._refresh_view(row["entity"], row["record_id"])
        self.db.execute("COMMIT")

    def _outstanding_fields(self, entity, record_id) -> dict:
        """The device's own edits of a record the server does not have yet, oldest first."""
        merged = {}
        for r in self.db.execute("SELECT fields FROM outbox WHERE entity = ? AND record_id = ? ORDER BY seq",
                                 (entity, record_id)):
            merged.update(self._unseal(entity, record_id, r["fields"]))
        return merged

    def _refresh_view(self, entity, record_id, extra: dict | None = None) -> None:
        """Recompute what the user sees: the server's copy with outstanding edits on top. A record that
        never reached the server and has nothing outstanding (a dismissed create) is removed."""
        row = self.db.execute("SELECT version, server_data FROM record WHERE entity = ? AND id = ?",
                              (entity, record_id)).fetchone()
        if row is None:
            return
        outstanding = {**self._outstanding_fields(entity, record_id), **(extra or {})}
        if row["version"] == 0:
            # Never on the server: what the user typed is the only copy. Kept while it is queued or
            # shown in failed(), removed once dismissed.
            failed = self.db.execute("SELECT 1 FROM failed WHERE entity = ? AND record_id = ?",
                                     (entity, record_id)).fetchone()
            if not outstanding and failed is None:
                self.db.execute("DELETE FROM record WHERE entity = ? AND id = ?", (entity, record_id))
            elif outstanding:
                shown = self.get(entity, record_id) or {}
                self.db.execute("UPDATE record SET data = ? WHERE entity = ? AND id = ?",
                                (self._seal(entity, record_id, {**shown, **outstanding, "id": record_id}),
                                 entity, record_id))
            return
        server = self._unseal(entity, record_id, row["server_data"])
        self.db.execute("UPDATE record SET data = ? WHERE entity = ? AND id = ?",
                        (self._seal(entity, record_id, _view(server, outstanding, record_id)), entity, record_id))

    # ------------------------------------------------------------------ attachments

    def upload_attachment(self, child_id: str, data: bytes, content_type: str, *, filename: str | None = None,
                          record: tuple[str, str] | None = None, for_field: bool = True,
                          chunk_size: int = 256 * 1024) -> dict:
        """Upload a file for a child the server already has (push its create first), through the
        resumable endpoint (docs/sync-protocol.md, "Uploading attachments"); return the attachment.

        The upload's id is kept in ``meta`` under the file's SHA-256, so a call cut short (``Offline``)
        and made again with the same bytes asks the server how far it got and sends only the rest; a
        chunk whose answer was lost and was resent is answered 409 with the server's offset, which is
        where the next chunk starts."""
        import hashlib

        if not self.version("child", child_id):  # 0: created here, not pushed yet
            raise SyncError("Push the child first: the server does not know it yet.")
        digest = hashlib.sha256(data).hexdigest()
        key, report = f"upload:{digest}", SyncReport()
        upload_id, offset = self._meta(key), None
        if upload_id:
            state = self._request("GET", f"/api/v1/attachments/uploads/{upload_id}", None, report)
            self._check_common(state)
            offset = state.body["offset"] if state.status == 200 else None
        if offset is None:
            fields = {"content_type": content_type, "size": len(data), "sha256": digest, "filename": filename,
                      "for_field": for_field}
            if record:
                fields.update(record_entity=record[0], record_id=record[1])
            created = self._attachment_answer(self._request(
                "POST", f"/api/v1/children/{child_id}/attachments/uploads", fields, report), 201)
            upload_id, offset = created["id"], 0
            chunk_size = min(chunk_size, created["chunk_max_bytes"])
            self._set_meta(key, upload_id)
        while offset < len(data):
            sent = self._request("PATCH", f"/api/v1/attachments/uploads/{upload_id}", None, report,
                                 raw=data[offset:offset + chunk_size],
                                 extra_headers={"Content-Type": "application/offset+octet-stream",
                                                "Upload-Offset": str(offset)})
            error = (sent.body or {}).get("error") or {}
            if sent.status == 409 and error.get("code") == "offset_mismatch":
                offset = error["details"]["offset"]  # a resent chunk the server already had
                continue
            offset = self._attachment_answer(sent, 200)["offset"]
        done = self._request("POST", f"/api/v1/attachments/uploads/{upload_id}/finish", None, report)
        self.db.execute("DELETE FROM meta WHERE key = ?", (key,))  # finished or refused: never resumed
        return self._attachment_answer(done, 201)

    def _attachment_answer(self, response: Response, expected: int) -> dict:
        self._check_common(response)
        if response.status != expected:
            error = (response.body or {}).get("error") or {}
            raise AttachmentRefused(response.status, error.get("code"), error.get("message") or "")
        return response.body

    # ------------------------------------------------------------------ HTTP

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                "Accept-Encoding": "gzip"}

    def _request(self, method: str, path: str, payload: dict | None, report: SyncReport, *,
                 raw: bytes | None = None, extra_headers: dict | None = None) -> Response:
        """One call with retries: network errors, 5xx and 429 are retried with exponential backoff and
        full jitter, honouring ``Retry-After``. Anything else is returned to the caller to judge.
        ``raw``: a body that is not JSON (an attachment's chunk), sent as it is."""
        headers = {**self._headers(), **(extra_headers or {})}
        body = raw
        if payload is not None:
            # Serialised once: a retry sends the very same bytes. Level 6, as the server answers: for a
            # batch of 200 it is half the time of gzip's default 9 for 0.3% more bytes.
            body = gzip.compress(json.dumps(payload, separators=(",", ":")).encode(), compresslevel=6, mtime=0)
            headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
        url = self.base_url + path
        for attempt in range(1, self.max_attempts + 1):
            retry_after = None
            try:
                status, resp_headers, raw = self.transport(method, url, headers, body)
            except OSError as exc:
                problem = str(exc)
            else:
                resp_headers = {k.lower(): v for k, v in resp_headers.items()}
                if status < 500 and status != 429:
                    try:
                        return Response(status, resp_headers, self._decode(resp_headers, raw, status))
                    except (EOFError, OSError, zlib.error, ValueError) as exc:
                        # A streamed answer cut off half-way (the server died, the link dropped):
                        # the same as no answer at all.
                        problem = f"HTTP {status} with a truncated body ({type(exc).__name__})"
                else:
                    problem = f"HTTP {status}"
                    retry_after = _retry_after(resp_headers.get("retry-after"))
            if attempt == self.max_attempts:
                raise Offline(f"{method} {path} failed {attempt} times; last: {problem}. "
                              "Nothing is lost: the next sync carries on.")
            report.retries += 1
            self.sleep(self._backoff(attempt, retry_after))
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        # Full jitter (a random wait up to the exponential bound) spreads out many devices coming
        # back at once after an outage; the server's Retry-After is a floor.
        bound = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        delay = self.rng.uniform(0, bound)
        return max(delay, retry_after) if retry_after is not None else delay

    @staticmethod
    def _decode(headers: dict, raw: bytes, status: int) -> dict | None:
        if not raw:
            return None
        if headers.get("content-encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        return json.loads(raw)

    def _check_common(self, response: Response) -> None:
        """Answers that mean the same on every endpoint."""
        error = (response.body or {}).get("error") or {}
        if response.status == 401:
            raise Unauthorized(error.get("message") or "The device token was refused; enrol the device again.")
        if response.status == 403 and error.get("code") == "device_revoked":
            wipe = bool((response.body or {}).get("wipe"))
            if wipe:
                self.wipe()
            raise DeviceRevoked(error.get("message") or "This device was revoked.", wipe)

    def wipe(self) -> None:
        """Delete the local store: records, outbox, cursor, the file itself."""
        self.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.remove(self.path + suffix)
            except FileNotFoundError:
                pass

    # ------------------------------------------------------------------ sync

    def sync(self) -> SyncReport:
        """Push everything queued (oldest first), then pull until the device is up to date."""
        if self.db is None:
            raise SyncError("This device's store was wiped.")
        report = SyncReport()
        self.erase_expired()
        self.push(report)
        self.pull(report)
        return report

    def push(self, report: SyncReport | None = None) -> SyncReport:
        report = report or SyncReport()
        size = self.batch_size
        suspect_until = None  # while splitting a refused batch: the last seq it held
        while True:
            batch_id, rows = self._next_batch(size)
            if not rows:
                return report
            payload = {"protocol": PROTOCOL, "batch_id": batch_id, "mutations": [self._wire(r) for r in rows]}
            response = self._request("POST", "/api/v1/sync/push", payload, report)
            self._check_common(response)
            if response.status == 200:
                self._settle(rows, payload["mutations"], (response.body or {}).get("results"), report)
                if suspect_until is None or rows[-1]["seq"] >= suspect_until:
                    size, suspect_until = self.batch_size, None  # past the refused batch: full size again
                continue
            code = ((response.body or {}).get("error") or {}).get("code", f"http_{response.status}")
            if response.status == 409 and code == "id_conflict":
                # Another device already used this batch_id (a cloned store, a bad random source):
                # nothing of it was stored for this device; send the same mutations under a new one.
                self._unfreeze(batch_id)
                continue
            details = ((response.body or {}).get("error") or {}).get("details") or {}
            if response.status == 415 or (response.status == 422 and "protocol" in (details.get("fields") or {})):
                # Wrong for every batch this app sends (its encoding, or a protocol the server no longer
                # speaks): failing the mutations one by one would only empty the queue. Keep them.
                raise ProtocolError(f"push refused: {code}: {((response.body or {}).get('error') or {}).get('message')}"
                                    " Update the app; the outbox is kept.")
            if response.status in (400, 413, 422) and len(rows) > 1:
                # The envelope was refused, so the server stored nothing of this batch. Send the same
                # mutations again in smaller batches (with new batch ids) until the one at fault is
                # alone and can be set aside, so one bad mutation never blocks the queue.
                self._unfreeze(batch_id)
                size = max(1, len(rows) // 2)
                suspect_until = max(suspect_until or 0, rows[-1]["seq"])
                continue
            if response.status in (400, 413, 422):
                self._fail(rows, code, (response.body or {}).get("error", {}).get("message"),
                           (response.body or {}).get("error", {}).get("details"), report)
                if suspect_until is not None and rows[-1]["seq"] >= suspect_until:
                    size, suspect_until = self.batch_size, None
                continue
            raise ProtocolError(f"push answered HTTP {response.status} ({code})")

    def _next_batch(self, size: int) -> tuple[str | None, list]:
        """The batch to send: an earlier batch that never got an answer is resent unchanged (same
        batch_id, same mutations); otherwise the oldest unsent mutations get a new batch_id."""
        row = self.db.execute("SELECT batch_id FROM outbox WHERE batch_id IS NOT NULL ORDER BY seq LIMIT 1").fetchone()
        if row is not None:
            batch_id = row["batch_id"]
        else:
            batch_id = str(uuid.uuid4())
            self._begin()
            self.db.execute("UPDATE outbox SET batch_id = ? WHERE seq IN "
                            "(SELECT seq FROM outbox WHERE batch_id IS NULL ORDER BY seq LIMIT ?)", (batch_id, size))
            self.db.execute("COMMIT")
        rows = self.db.execute("SELECT * FROM outbox WHERE batch_id = ? ORDER BY seq", (batch_id,)).fetchall()
        return batch_id, rows

    def _unfreeze(self, batch_id: str) -> None:
        self.db.execute("UPDATE outbox SET batch_id = NULL WHERE batch_id = ?", (batch_id,))

    def _wire(self, row) -> dict:
        return {"mutation_id": row["mutation_id"], "entity": row["entity"], "id": row["record_id"],
                "op": row["op"], "base_version": row["base_version"],
                "fields": self._unseal(row["entity"], row["record_id"], row["fields"]),
                "recorded_at": row["recorded_at"]}

    def _settle(self, rows, sent, results, report: SyncReport) -> None:
        """Apply the server's answer to a batch, all in one local transaction."""
        if not isinstance(results, list) or len(results) != len(rows):
            raise ProtocolError("push answer does not hold one result per mutation")
        self._begin()
        try:
            for row, mutation, result in zip(rows, sent, results, strict=True):
                if result.get("mutation_id") != row["mutation_id"]:
                    raise ProtocolError("push results are not in the order of the mutations")
                report.pushed += 1
                status = result.get("status")
                if status == "duplicate" and result.get("original_status") == "rejected":
                    status = "rejected"  # the first answer to this mutation was a rejection
                if status in SETTLED:
                    self._settled(row, mutation["fields"], result, report)
                elif status == "rejected":
                    self._reject(row, result.get("code", "rejected"), result.get("message"),
                                 result.get("errors"), report)
                else:
                    raise ProtocolError(f"unknown push status {status!r}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _settled(self, row, sent: dict, result, report: SyncReport) -> None:
        entity, record_id = row["entity"], row["record_id"]
        status, version = result["status"], result.get("version")
        counter = {"applied": "applied", "duplicate": "duplicates", "conflict": "conflicts"}[status]
        setattr(report, counter, getattr(report, counter) + 1)
        self.db.execute("DELETE FROM outbox WHERE seq = ?", (row["seq"],))
        conflicting = set(result.get("conflicting_fields") or ())
        if status == "conflict":
            self.db.execute("INSERT OR REPLACE INTO conflict VALUES (?, ?, ?, ?, ?)",
                            (result.get("conflict_id") or row["mutation_id"], row["mutation_id"], entity,
                             record_id, json.dumps(sorted(conflicting))))
        rec = self.db.execute("SELECT version, server_data FROM record WHERE entity = ? AND id = ?",
                              (entity, record_id)).fetchone()
        if rec is not None and version is not None:
            server = self._unseal(entity, record_id, rec["server_data"])
            # The server now holds what it accepted; conflicting fields keep the server's value,
            # which the pull that follows brings.
            server.update({k: v for k, v in sent.items() if k not in conflicting})
            for name in RESTRICTED_FIELDS.get(entity, ()):
                server.pop(name, None)
            new_version = max(rec["version"], version)
            if status == "applied" and version == row["base_version"] + 1:
                # Only this device's change lies between the old base and the new version, so edits
                # queued on top of it are based on the new version. (Not after a conflict: the step
                # may then be someone else's change, which a queued edit must still be checked against.)
                self.db.execute("UPDATE outbox SET base_version = ? WHERE entity = ? AND record_id = ? "
                                "AND base_version = ?", (version, entity, record_id, row["base_version"]))
            # The new server copy (restricted fields just dropped) and the view over it in one statement,
            # instead of _drop_uploaded_restricted and _refresh_view re-reading both (~9 queries a mutation).
            data = _view(server, self._outstanding_fields(entity, record_id), record_id)
            self.db.execute("UPDATE record SET version = ?, server_data = ?, data = ? WHERE entity = ? AND id = ?",
                            (new_version, self._seal(entity, record_id, server), self._seal(entity, record_id, data),
                             entity, record_id))
            return
        self._drop_uploaded_restricted(entity, record_id)
        self._refresh_view(entity, record_id)

    def _drop_uploaded_restricted(self, entity, record_id) -> None:
        """Restricted fields leave the device once the server has them (DESIGN §3), or once a rejection
        has kept them for its set time: from the view, unless an edit still waiting to be sent carries them."""
        names = RESTRICTED_FIELDS.get(entity, ())
        if not names:
            return
        waiting = self._outstanding_fields(entity, record_id)
        rec = self.db.execute("SELECT data FROM record WHERE entity = ? AND id = ?", (entity, record_id)).fetchone()
        if rec is None:
            return
        data = self._unseal(entity, record_id, rec["data"])
        kept = {k: v for k, v in data.items() if k not in names or k in waiting}
        if kept != data:
            self.db.execute("UPDATE record SET data = ? WHERE entity = ? AND id = ?",
                            (self._seal(entity, record_id, kept), entity, record_id))

    def _reject(self, row, code, message, errors, report: SyncReport) -> None:
        report.rejected += 1
        report.failed_ids.append(row["mutation_id"])
        self.db.execute("DELETE FROM outbox WHERE seq = ?", (row["seq"],))
        # The fields move as they are stored (sealed, bound to the same record); the server's message and
        # details are sealed too, as they may echo what was sent.
        entity, record_id = row["entity"], row["record_id"]
        self.db.execute("INSERT OR REPLACE INTO failed VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                        (row["mutation_id"], entity, record_id, row["op"], row["fields"], code,
                         self.cipher.seal_value(entity, record_id, message),
                         self.cipher.seal_value(entity, record_id, errors), self._now_iso()))
        if row["op"] == "update":
            # The user sees the server's copy again, and the failed edit in failed().
            self._refresh_view(row["entity"], row["record_id"])

    def _fail(self, rows, code, message, details, report: SyncReport) -> None:
        self._begin()
        for row in rows:
            self._reject(row, code, message, details, report)
        self.db.execute("COMMIT")

    # ------------------------------------------------------------------ pull

    def pull(self, report: SyncReport | None = None) -> SyncReport:
        report = report or SyncReport()
        while True:
            query = {"limit": self.page_size}
            cursor = self.cursor
            if cursor:
                query["cursor"] = cursor
            response = self._request("GET", "/api/v1/sync/pull?" + urlencode(query), None, report)
            self._check_common(response)
            code = ((response.body or {}).get("error") or {}).get("code")
            if response.status in (409, 400) and code in ("resync_required", "invalid_cursor"):
                if not cursor:
                    raise ProtocolError(f"pull without a cursor answered {code}")
                # Start again from empty; records the full pull does not confirm are removed at its end.
                self._begin_full_pull()
                report.resynced = True
                continue
            if response.status != 200:
                raise ProtocolError(f"pull answered HTTP {response.status} ({code})")
            body = response.body or {}
            self._store_page(body, report)
            report.pages += 1
            if not body.get("has_more"):
                return report

    def _begin_full_pull(self) -> None:
        self._begin()
        gen = int(self._meta("gen", "0")) + 1
        self._set_meta("gen", str(gen))
        self._set_meta("full_pull", "1")
        self.db.execute("DELETE FROM meta WHERE key = 'cursor'")
        self.db.execute("COMMIT")

    def _store_page(self, body: dict, report: SyncReport) -> None:
        """Store one page and its cursor in one transaction: a crash either keeps both or neither,
        so the page is fetched again and nothing is skipped."""
        changes, new_cursor = body.get("changes"), body.get("cursor")
        if not isinstance(changes, list) or not new_cursor:
            raise ProtocolError("pull page lacks changes or cursor")
        self._begin()
        try:
            gen = int(self._meta("gen", "0"))
            for change in changes:
                entity, record_id = change["entity"], str(change["id"])
                if change["op"] == "remove":
                    report.removed += 1
                    self._remove(entity, record_id)
                else:
                    report.pulled += 1
                    self._upsert(entity, record_id, change["version"], change.get("data") or {}, gen)
            self._set_meta("cursor", new_cursor)
            if not body.get("has_more") and self._meta("full_pull") == "1":
                # A full pull after resync_required: whatever it did not send is no longer ours.
                stale = self.db.execute(
                    "SELECT entity, id FROM record WHERE pulled_gen < ? AND version > 0", (gen,)).fetchall()
                for r in stale:
                    self._remove(r["entity"], r["id"])
                self.db.execute("DELETE FROM meta WHERE key = 'full_pull'")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _upsert(self, entity, record_id, version, data, gen) -> None:
        row = self.db.execute("SELECT version FROM record WHERE entity = ? AND id = ?", (entity, record_id)).fetchone()
        if row is not None and row["version"] > version:
            # An older copy than the one the device has (its own push was answered with a newer
            # version); the next page brings the newer one. Still confirmed in scope.
            self.db.execute("UPDATE record SET pulled_gen = ? WHERE entity = ? AND id = ?", (gen, entity, record_id))
            return
        # Never overwrite the device's unsent edits: they stay on top of the server's copy until the
        # server has answered them.
        view = {**data, **self._outstanding_fields(entity, record_id), "id": record_id}
        child_id = parent_of(entity, record_id, data)
        self.db.execute(
            "INSERT INTO record (entity, id, child_id, version, server_data, data, pulled_gen)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (entity, id) DO UPDATE SET child_id = excluded.child_id,"
            " version = excluded.version, server_data = excluded.server_data, data = excluded.data,"
            " pulled_gen = excluded.pulled_gen",
            (entity, record_id, child_id, version, sealed := self._seal(entity, record_id, data),
             sealed if view == data else self._seal(entity, record_id, view), gen))

    def _remove(self, entity, record_id) -> None:
        if self._outstanding_fields(entity, record_id):
            return  # kept until the server answers the edit (it will reject it; failed() shows it)
        self.db.execute("DELETE FROM record WHERE entity = ? AND id = ?", (entity, record_id))
        self.db.execute("DELETE FROM conflict WHERE entity = ? AND record_id = ?", (entity, record_id))
        if entity == "tracing_request":
            # A request reunified or closed is removed alone; its traces go with it.
            for (trace_id,) in self.db.execute("SELECT id FROM record WHERE entity = 'trace' AND child_id = ?",
                                               (record_id,)).fetchall():
                self._remove("trace", trace_id)


def _view(server_data: dict, outstanding: dict, record_id: str) -> dict:
    """What the user sees of a record the server has: its copy with the device's unsent edits on top."""
    return {**server_data, **outstanding, "id": record_id}


def _retry_after(value) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: the exponential backoff is good enough
