"""SQLAlchemy models, one module per aggregate, and the domain rules of a record's lifecycle.

Importing this package registers every model on ``db.metadata``. Nothing here imports ``server`` or
``sync``.
"""

from models import changes  # noqa: F401  (registers the change-sequence flush hook)
from models.accounts import Device, User
from models.agencies import Agency  # noqa: F401  (registers partner agencies)
from models.attachments import Attachment, AttachmentUpload  # noqa: F401  (registers attachments)
from models.audit import AuditEvent, AuditEventChild, audit
from models.base import db, utcnow
from models.care import Assessment, Consent, Service
from models.changes import ChangeCounter, ScopeChange
from models.children import Child
from models.followups import Alert, Followup
from models.grants import ManagerGrant  # noqa: F401  (registers the two-person manager grants)
from models.history import RecordHistory
from models.lifecycle import StageTransition
from models.login_throttle import LoginThrottle  # noqa: F401  (registers the sign-in counters)
from models.matching import MatchCandidate  # noqa: F401  (registers the matching tables)
from models.notifications import Notification  # noqa: F401  (registers the outbox table)
from models.openrosa import ChildExtraField, OpenRosaSubmission  # noqa: F401  (the OpenRosa submission log)
from models.records import ENTITIES, Actor
from models.referrals import Referral, ReferralStep  # noqa: F401  (registers referrals)
from models.search import ChildSearchToken
from models.syncstate import Conflict, MutationLog, SyncBatch  # noqa: F401  (registers the sync tables)
from models.tracing import TracingRequest  # noqa: F401  (registers the tracing tables)
from models.transfers import Transfer  # noqa: F401  (registers inter-agency transfers)

__all__ = [
    "Actor", "Alert", "Assessment", "AuditEvent", "AuditEventChild", "ChangeCounter", "Child", "ChildSearchToken", "Consent", "Device", "ENTITIES",
    "Followup", "RecordHistory", "ScopeChange", "Service", "StageTransition", "User", "audit", "db", "utcnow",
]
