"""One dispatch run: expire what is too old, then per recipient and channel claim the pending rows,
send one digest, and record the outcome in the same transaction.

Each digest commits on its own so one unreachable recipient or channel never holds back (or re-sends)
the others: a digest is marked sent in the transaction that held its rows, and a crash before that
commit leaves them pending to be retried.
"""

import logging
import uuid
from dataclasses import dataclass, field

from models import Alert, Child, User, db
from models.base import utcnow
from models.notifications import Notification
from server import metrics
from server.notify import outbox
from server.notify.channels import SENDERS, Digest, DigestLine, SendFailed

log = logging.getLogger(__name__)


@dataclass
class DispatchResult:
    sent: list[tuple[str, str, int]] = field(default_factory=list)  # (recipient, channel, alerts)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (recipient, channel, error)
    expired: int = 0


def _digest(ids: list[int], recipient: User, now, base_url: str) -> tuple[Digest | None, list[int], list[int]]:
    rows = db.session.execute(
        db.select(Notification.id, Alert, Child.case_code)
        .join(Alert, Alert.id == Notification.alert_id).outerjoin(Child, Child.id == Alert.child_id)
        .where(Notification.id.in_(ids))
    ).all()
    live = [(nid, alert, code) for nid, alert, code in rows if alert.status != "resolved" and alert.deleted_at is None]
    live_ids = {nid for nid, _, _ in live}
    gone = [nid for nid, _, _ in rows if nid not in live_ids]
    if not live:
        return None, [], gone
    order = {"urgent": 0, "warning": 1, "info": 2}
    live.sort(key=lambda r: (order.get(r[1].severity, 3), r[1].due_on or now.date(), r[2] or ""))
    lines = [DigestLine(alert_id=str(alert.id), case_code=code or "-", rule=alert.rule, severity=alert.severity,
                        due_on=alert.due_on.isoformat() if alert.due_on else None,
                        link=f"{base_url.rstrip('/')}/children/{alert.child_id}")
             for _, alert, code in live]
    digest = Digest(digest_id=str(uuid.uuid4()), recipient=recipient.username, email=recipient.email,
                    lines=lines, sent_at=now.isoformat(), language=recipient.language)
    return digest, [nid for nid, _, _ in live], gone


def dispatch(config, now=None) -> DispatchResult:
    """Send what is due. Commits once per digest (see the module docstring)."""
    now = now or utcnow()
    result = DispatchResult()
    result.expired = outbox.expire(now)
    metrics.count_notification("any", "expired", result.expired)
    pairs = outbox.due_digests(now)
    db.session.commit()
    for recipient_id, channel in pairs:
        ids = outbox.claim(recipient_id, channel, now)
        recipient = db.session.get(User, recipient_id)
        if not ids or recipient is None:
            db.session.commit()
            continue
        digest, live, gone = _digest(ids, recipient, now, config["BASE_URL"])
        outbox.mark_cancelled(gone)
        if digest is None:
            db.session.commit()
            continue
        try:
            SENDERS[channel](digest, config)
        except SendFailed as exc:
            outbox.mark_failed(live, str(exc), now, config["NOTIFY_RETRY_SECONDS"])
            result.failed.append((recipient.username, channel, str(exc)))
            metrics.count_notification(channel, "failed")
            log.warning("notification to %s by %s failed (%s); will retry", recipient.username, channel, exc)
        else:
            outbox.mark_sent(live, uuid.UUID(digest.digest_id), now)
            result.sent.append((recipient.username, channel, len(live)))
            metrics.count_notification(channel, "sent")
        db.session.commit()
    return result
