"""People and devices: users with a role, and the field devices enrolled to caseworkers."""

import hashlib
import hmac
import math
import re
import secrets
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from models.base import UTCDateTime, db, utcnow
from models.login_throttle import TOO_MANY, record_failure, record_success, throttle_keys, wait_needed
from models.vocab import ROLES

USERNAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def new_user_problems(username: str, role: str, display_name: str | None, email: str | None) -> dict:
    """What is wrong with a new account, per field (empty when nothing): the web and the command line
    ask the same questions. Too long a name is refused, never cut, and PostgreSQL would refuse it."""
    problems = {}
    if not USERNAME.match(username):
        problems["username"] = ["1 to 64 letters, digits, '.', '-' or '_'."]
    elif db.session.execute(db.select(User.id).where(User.username == username)).first():
        problems["username"] = [f"A user named '{username}' already exists."]
    if role not in ROLES:
        problems["role"] = [f"Choose one of: {', '.join(ROLES)}."]
    for field, value, most in (("display_name", display_name, 120), ("email", email, 254)):
        if value and len(value) > most:
            problems[field] = [f"At most {most} characters (got {len(value)})."]
    return problems


class User(db.Model):
    __tablename__ = "user"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(default=True)
    # Changing it invalidates every API token and web session issued before (password reset, disable).
    token_nonce: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_hex(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when someone else chose the password (an admin's reset, a new account, the first admin): the
    # user must choose their own before doing anything else, so the one who handed it out cannot keep
    # using it unnoticed.
    password_temporary: Mapped[bool] = mapped_column(default=False)
    # The partner agency the user works for (models.agencies); its ``limits_reach`` limits what they see.
    agency_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agency.id"))
    # The web's language (a catalogue under server/translations, or "en"); None: the browser's choice.
    language: Mapped[str | None] = mapped_column(String(16))

    def set_password(self, password: str, *, temporary: bool = False) -> None:
        self.password_hash = generate_password_hash(password)  # scrypt
        self.password_temporary = temporary
        self.end_sessions()

    def end_sessions(self) -> None:
        """Every web session and API token issued until now stops working (they carry the nonce)."""
        self.token_nonce = secrets.token_hex(16)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"

    def __repr__(self):
        return f"<User {self.username} {self.role}>"


class Device(db.Model):
    """A caseworker's phone or tablet. Its token is shown once; only its SHA-256 is kept."""

    __tablename__ = "device"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), index=True)
    label: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64))
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enrolled_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    wipe: Mapped[bool] = mapped_column(default=False)
    # An OpenRosa device (ODK Collect, KoboCollect, Enketo) signs in with HTTP Basic: a username and a
    # generated password, hashed like a user's. Its bearer token is never shown, so it cannot sync.
    odk_username: Mapped[str | None] = mapped_column(String(64), unique=True)
    odk_password_hash: Mapped[str | None] = mapped_column(String(256))

    user: Mapped[User] = relationship(foreign_keys=[user_id])

    @staticmethod
    def new_secret() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def hash_secret(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    def token_matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.token_hash, self.hash_secret(secret))

    def odk_password_matches(self, password: str) -> bool:
        return bool(self.odk_password_hash) and check_password_hash(self.odk_password_hash, password)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of: {', '.join(ROLES)}")
    return role


class LoginRefused(Exception):
    """Raised with a message safe to show: it never says whether the username exists."""


def authenticate(username: str, password: str, now: datetime, *, address: str | None = None,
                 known_client: str | None = None) -> User:
    """Check a password, throttled per client and typed username (models/login_throttle.py): a wait
    grows with the failures of that pair, and no account is ever locked. ``known_client`` is the id of
    a client this username signed in from before (web cookie). Flushes the counters."""
    keys = throttle_keys(username, address, known_client)
    wait = wait_needed(keys, now)
    if wait:
        raise LoginRefused(TOO_MANY.format(seconds=max(1, math.ceil(wait.total_seconds()))))
    user = db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        # Same work as a real check, so timing does not reveal which usernames exist.
        check_password_hash(_DUMMY_HASH, password)
        record_failure(keys, now)
        raise LoginRefused("Wrong username or password.")
    if not user.check_password(password):
        record_failure(keys, now)
        raise LoginRefused("Wrong username or password.")
    if not user.active:
        raise LoginRefused("This account is disabled. Ask your administrator.")
    record_success(keys)
    user.last_login_at = now
    db.session.flush()
    return user


_DUMMY_HASH = generate_password_hash("not-a-real-password")
