"""Encrypted backups of the whole database, and their restore into an empty one (issue 8, finding 8).

A backup file is a short header followed by AES-256-GCM chunks:

    magic "HCBACKUP" | format version (1 byte) | dialect length (1 byte) + dialect ("sqlite"/"postgresql")
    | salt (16 bytes)
    then chunks: last-flag (1 byte) | ciphertext length (4 bytes, big-endian) | ciphertext (+16-byte tag)

The file key is HKDF-SHA256 of the backup key with the file's random salt, so no two files share a key;
chunk ``i`` uses the nonce ``i`` and authenticates the header and its last-flag, so a file that was cut
short, reordered or edited is refused rather than half restored. The backup key is not the data key: a
backup travels (to a drive, another office) and must not open with the key that sits on the server. The
data inside stays sealed with the data key as well, so restoring needs both.

SQLite is copied with its online backup API into memory (no plaintext copy touches the disk) while the
app keeps serving; PostgreSQL is dumped by ``pg_dump --format=custom`` streamed straight into the file.
"""

import base64
import os
import shutil
import sqlite3
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import inspect

MAGIC = b"HCBACKUP"
FORMAT_VERSION = 1
CHUNK = 1024 * 1024
# Tables a freshly migrated database already holds a row in.
BOOKKEEPING_TABLES = {"alembic_version", "change_counter"}


class BackupError(Exception):
    """Something the operator must fix; the message says what."""


def backup_cipher_key(key: str | None) -> bytes:
    if not key:
        raise BackupError("No backup key: set HOMECOMING_BACKUP_KEY or HOMECOMING_BACKUP_KEY_FILE (make one "
                          "with `flask keys generate`; keep it apart from the backups, docs/operations.md)")
    try:
        raw = base64.urlsafe_b64decode(key.encode())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise BackupError("HOMECOMING_BACKUP_KEY must be 32 random bytes in urlsafe base64 (44 characters)")
    return raw


def _file_key(raw: bytes, salt: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"homecoming backup v1").derive(raw)
    return AESGCM(derived)


def _header(dialect: str, salt: bytes) -> bytes:
    name = dialect.encode()
    return MAGIC + bytes([FORMAT_VERSION, len(name)]) + name + salt


class EncryptedWriter:
    """Encrypts what is written, chunk by chunk, into ``out`` (a binary file)."""

    def __init__(self, out, raw_key: bytes, dialect: str):
        salt = os.urandom(16)
        self.out, self.cipher, self.header = out, _file_key(raw_key, salt), _header(dialect, salt)
        self.buffer, self.index = bytearray(), 0
        out.write(self.header)

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) > CHUNK:
            self._chunk(bytes(self.buffer[:CHUNK]), last=False)
            del self.buffer[:CHUNK]

    def close(self) -> None:
        self._chunk(bytes(self.buffer), last=True)
        self.buffer.clear()

    def _chunk(self, plain: bytes, last: bool) -> None:
        flag = b"\x01" if last else b"\x00"
        sealed = self.cipher.encrypt(self.index.to_bytes(12, "big"), plain, self.header + flag)
        self.out.write(flag + struct.pack(">I", len(sealed)) + sealed)
        self.index += 1


def read_header(source) -> tuple[str, bytes, bytes]:
    """(dialect, salt, header bytes) of a backup file, refusing anything else."""
    start = source.read(len(MAGIC) + 2)
    if len(start) < len(MAGIC) + 2 or not start.startswith(MAGIC):
        raise BackupError("Not a Homecoming backup file")
    if start[len(MAGIC)] != FORMAT_VERSION:
        raise BackupError(f"Backup format version {start[len(MAGIC)]} is not one this version reads")
    name = source.read(start[-1])
    salt = source.read(16)
    if len(salt) != 16:
        raise BackupError("The backup file is cut short")
    return name.decode(), salt, start + name + salt


def decrypted_chunks(source, raw_key: bytes) -> Iterator[bytes]:
    """The plaintext of a backup file after its header, chunk by chunk; raises on any tampering."""
    dialect, salt, header = read_header(source)
    cipher, index = _file_key(raw_key, salt), 0
    while True:
        head = source.read(5)
        if len(head) < 5:
            raise BackupError("The backup file is cut short (its last part is missing): it cannot be restored")
        flag, length = head[:1], struct.unpack(">I", head[1:])[0]
        sealed = source.read(length)
        try:
            plain = cipher.decrypt(index.to_bytes(12, "big"), sealed, header + flag)
        except InvalidTag:
            raise BackupError("Cannot decrypt the backup: wrong backup key, or the file was altered") from None
        index += 1
        yield plain
        if flag == b"\x01":
            if source.read(1):
                raise BackupError("The backup file has data after its last part: it was altered")
            return


def create(db, path: Path, key: str | None) -> str:
    """Write an encrypted backup of the database to ``path`` (a new file, mode 0600); return its dialect."""
    raw_key = backup_cipher_key(key)
    dialect = db.engine.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise BackupError(f"Backups of a {dialect} database are not supported")
    if dialect == "postgresql" and not shutil.which("pg_dump"):
        raise BackupError("pg_dump is not on PATH: install the PostgreSQL client (Debian: apt-get install "
                          "postgresql-client, the same major version as the server) and run again")
    try:
        # A new file, the owner's alone from its first byte; a backup never overwrites another.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"{path} exists already: choose a new name (a backup never overwrites)") from None
    except OSError as exc:
        raise BackupError(f"Cannot write {path}: {exc.strerror}") from None
    try:
        with open(fd, "wb") as out:
            writer = EncryptedWriter(out, raw_key, dialect)
            if dialect == "sqlite":
                writer.write(_sqlite_image(db))
            else:
                _pg_dump_into(db, writer)
            writer.close()
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)  # no half-written backup that looks like a good one
        raise
    return dialect


def _sqlite_image(db) -> bytes:
    raw = db.engine.raw_connection()
    try:
        copy = sqlite3.connect(":memory:")
        raw.driver_connection.backup(copy)  # a consistent copy while other connections keep writing
        image = copy.serialize()
        copy.close()
        return _rollback_journal(image)
    finally:
        raw.close()


def _libpq(db) -> tuple[str, dict]:
    url = db.engine.url
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # never on the command line, where `ps` shows it
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _pg_dump_into(db, writer) -> None:
    dsn, env = _libpq(db)
    process = subprocess.Popen(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--dbname={dsn}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    for block in iter(lambda: process.stdout.read(CHUNK), b""):
        writer.write(block)
    errors = process.stderr.read().decode(errors="replace")
    if process.wait() != 0:
        raise BackupError(f"pg_dump failed: {errors.strip()[:500]}")


def nonempty_tables(db) -> list[str]:
    """Tables holding rows (beyond what a fresh migration writes): a restore goes only into none."""
    quote = db.engine.dialect.identifier_preparer.quote
    found = []
    with db.engine.connect() as conn:
        for name in inspect(conn).get_table_names():
            if name == "alembic_version":
                continue
            rows = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {quote(name)}").scalar()
            if name == "change_counter":
                # A fresh migration writes its one row at 0; any change moves it.
                moved = conn.exec_driver_sql("SELECT COALESCE(MAX(value), 0) FROM change_counter").scalar()
                if rows > 1 or moved:
                    found.append(name)
            elif rows:
                found.append(name)
    return found


def restore(db, path: Path, key: str | None) -> str:
    """Restore a backup file into this (empty) database; return the dialect."""
    raw_key = backup_cipher_key(key)
    dialect = db.engine.dialect.name
    try:
        source = open(path, "rb")
    except OSError as exc:
        raise BackupError(f"Cannot read {path}: {exc.strerror}") from None
    with source:
        made_on = read_header(source)[0]
        if made_on != dialect:
            raise BackupError(f"This backup is of a {made_on} database; the configured database is {dialect}")
        busy = nonempty_tables(db)
        if busy:
            raise BackupError("The database is not empty (rows in " + ", ".join(sorted(busy)[:5])
                              + "). Restore only into an empty database: a new SQLite file or a new "
                              "PostgreSQL database, set by HOMECOMING_DATABASE_URL.")
        source.seek(0)
        chunks = decrypted_chunks(source, raw_key)
        if dialect == "sqlite":
            _sqlite_restore(db, b"".join(chunks))
        else:
            _pg_restore(db, chunks, has_tables=bool(inspect(db.engine).get_table_names()))
    db.engine.dispose()
    return dialect


def _rollback_journal(image: bytes) -> bytes:
    """The image marked as a rollback-journal database (header bytes 18 and 19): the source runs in WAL
    mode, and a WAL-marked image cannot be opened in memory. The server sets WAL again on first open."""
    if image[:16] == b"SQLite format 3\x00" and image[18:20] == b"\x02\x02":
        image = image[:18] + b"\x01\x01" + image[20:]
    return image


def _sqlite_restore(db, image: bytes) -> None:
    copy = sqlite3.connect(":memory:")
    try:
        copy.deserialize(_rollback_journal(image))
        copy.execute("PRAGMA schema_version").fetchone()  # refuses an image that is not a database
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"The backup holds no readable SQLite database ({exc})") from None
    db.engine.dispose()
    raw = db.engine.raw_connection()
    try:
        copy.backup(raw.driver_connection)
    finally:
        raw.close()
        copy.close()


def _pg_restore(db, chunks, has_tables: bool) -> None:
    if not shutil.which("pg_restore"):
        raise BackupError("pg_restore is not on PATH: install the PostgreSQL client (Debian: apt-get install "
                          "postgresql-client) and run again")
    dsn, env = _libpq(db)
    db.engine.dispose()
    # A migrated but empty database has the tables already: --clean drops them (they hold nothing).
    clean = ["--clean", "--if-exists"] if has_tables else []
    process = subprocess.Popen(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                                "--single-transaction", *clean, f"--dbname={dsn}"],
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        for chunk in chunks:
            process.stdin.write(chunk)
    except BrokenPipeError:
        pass
    except BackupError:
        process.kill()
        process.wait()
        raise
    finally:
        if process.stdin and not process.stdin.closed:
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
    errors = process.stderr.read().decode(errors="replace")
    if process.wait() != 0:
        raise BackupError(f"pg_restore failed: {errors.strip()[:500]}")
