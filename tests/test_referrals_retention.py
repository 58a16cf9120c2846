"""De-identification (retention) erases a referral's personal values and keeps what the report counts."""

from datetime import date

import pytest

from models import db
from models.errors import RecordDeidentified
from models.referrals import Referral, propose_referral
from models.retention import ERASED, deidentify
from tests.factories import make_child, make_user


def test_deidentify_erases_the_reason_provider_and_override_of_a_referral(ctx):
    boss = make_user("manager", username="boss.d")
    child = make_child(boss)
    referral = propose_referral(child, {"service_type": "legal", "provider_name": "Example Legal Aid",
                                        "reason": "Birth certificate", "override_reason": "No caregiver"},
                                boss, today=date(2025, 1, 1))
    db.session.commit()
    assert set(ERASED[Referral]) == {"provider_name", "reason", "override_reason"}
    deidentify([child.id])
    db.session.commit()
    db.session.expire_all()
    kept = db.session.get(Referral, referral.id)
    assert (kept.provider_name, kept.reason, kept.override_reason) == (None, None, None)
    assert (kept.service_type, kept.status, kept.consent_overridden) == ("legal", "proposed", True)


def test_a_de_identified_case_can_no_longer_be_referred(ctx):
    boss = make_user("manager", username="boss.e")
    child = make_child(boss)
    deidentify([child.id])
    db.session.commit()
    with pytest.raises(RecordDeidentified):
        propose_referral(child, {"service_type": "legal", "provider_name": "P", "override_reason": "x"}, boss,
                         today=date(2025, 1, 1))
