"""Granting the manager role takes two people (finding 3).

Managers see every child and the restricted CAAFAG fields. An admin alone could once create a
manager account (and see its one-time password), promote an account whose password they knew, or
reset a manager's password and read it: and so read every restricted field. Now, from the web, each
of these only *asks*: the request is stored here as pending, and an active manager who is neither the
one who asked nor the account concerned confirms or refuses it on ``/grants``.

Confirming always sets a fresh temporary password, delivered to the user by e-mail when SMTP is set
up and the account has an address (the confirming manager sees that address before confirming), or
else shown once to the confirming manager to hand over in person. So the admin who asked never learns
a manager's password, even for a promotion of an account whose password they once knew; the user
must choose their own at first sign-in (``password_temporary``). The server's command line
(``flask users create --role manager``) may still create a manager directly: whoever runs it already
holds the keys, and the first manager has no one to confirm them.
"""

import secrets
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.accounts import User
from models.audit import audit
from models.base import UTCDateTime, db, utcnow
from models.errors import _Named

GRANT_KINDS = ("create", "role", "password")
KIND_TEXT = {"create": "new manager account", "role": "role change to manager",
             "password": "password reset of a manager"}


class GrantRefused(_Named):
    code = "grant_refused"


class ManagerGrant(db.Model):
    __tablename__ = "manager_grant"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    old_role: Mapped[str | None] = mapped_column(String(16))
    requested_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    requested_by: Mapped[User | None] = relationship(foreign_keys=[requested_by_id])

    @property
    def what(self) -> str:
        return KIND_TEXT[self.kind]


def pending_grant_of(user: User) -> ManagerGrant | None:
    return db.session.execute(db.select(ManagerGrant).where(ManagerGrant.user_id == user.id,
                                                            ManagerGrant.status == "pending")).scalar_one_or_none()


def pending_grants() -> list[ManagerGrant]:
    return list(db.session.execute(db.select(ManagerGrant).where(ManagerGrant.status == "pending")
                                   .order_by(ManagerGrant.requested_at)).scalars())


def unusable_password() -> str:
    """A password nobody is told: the account cannot be used until a grant is confirmed."""
    return secrets.token_urlsafe(32)


def request_grant(user: User, kind: str, by: User | None, via: str) -> ManagerGrant:
    """Store a pending request to make ``user`` a manager (or reset a manager's password). Flushes."""
    if kind not in GRANT_KINDS:
        raise ValueError(kind)
    if pending_grant_of(user) is not None:
        raise GrantRefused(f"A request for {user.username} already waits for a manager's confirmation.")
    grant = ManagerGrant(id=uuid.uuid4(), user_id=user.id, kind=kind, old_role=user.role,
                         requested_by_id=getattr(by, "id", None))
    db.session.add(grant)
    db.session.flush()
    audit("grant.request", actor=by, target=user.username, kind=kind, grant_id=str(grant.id), via=via)
    return grant


def _check_decider(grant: ManagerGrant, by: User) -> None:
    if grant.status != "pending":
        raise GrantRefused("This request was already decided.")
    if not by.active or by.role != "manager":
        raise GrantRefused("Only a manager confirms a manager grant.")
    if by.id in (grant.requested_by_id, grant.user_id):
        raise GrantRefused("Someone other than the one who asked, and other than the account concerned, "
                           "must confirm this.")


def confirm_grant(grant: ManagerGrant, by: User, new_password: str, via: str) -> User:
    """Apply a pending grant: the account becomes an active manager with ``new_password`` as a
    temporary password (its sessions and tokens end). The caller delivers the password. Flushes."""
    _check_decider(grant, by)
    user = grant.user
    user.role = "manager"
    user.active = True
    user.set_password(new_password, temporary=True)
    grant.status, grant.decided_by_id, grant.decided_at = "confirmed", by.id, utcnow()
    db.session.flush()
    audit("grant.confirm", actor=by, target=user.username, kind=grant.kind, grant_id=str(grant.id), via=via)
    return user


def refuse_grant(grant: ManagerGrant, by: User, via: str) -> None:
    """Refuse a pending grant: nothing changes (a refused new account stays disabled). Flushes."""
    _check_decider(grant, by)
    grant.status, grant.decided_by_id, grant.decided_at = "refused", by.id, utcnow()
    db.session.flush()
    audit("grant.refuse", actor=by, target=grant.user.username, kind=grant.kind, grant_id=str(grant.id), via=via)
