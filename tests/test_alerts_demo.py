"""``DEMO=1 make run`` seeds fictional data that already shows the scheduler at work."""

from datetime import timedelta

from models import Alert, Followup, db, utcnow


def test_demo_data_has_due_and_overdue_follow_ups_and_alerts(app, runner):
    result = runner.invoke(args=["demo", "seed", "--children", "60"])
    assert result.exit_code == 0, result.output
    today = utcnow().date()
    with app.app_context():
        scheduled = db.session.execute(db.select(Followup.due_on).where(Followup.status == "scheduled")).scalars().all()
        assert any(d < today for d in scheduled)
        assert any(today <= d <= today + timedelta(days=2) for d in scheduled)
        assert db.session.execute(db.select(Followup.id).where(Followup.status == "done")).first()
        rules = set(db.session.execute(db.select(Alert.rule).where(Alert.status == "open")).scalars())
        assert {"visit_due", "visit_due_soon"} & rules
        assert any(rule.endswith("_overdue") for rule in rules) and any(rule.endswith("_escalated") for rule in rules)
