"""Pull reads rows, not ORM objects (sync.pull_rows): its data must stay exactly ``dump_record(record)``,
for every entity, on a first pull, an incremental pull and a scope addition; restricted columns are never
selected."""

from sqlalchemy import inspect

from models import Actor, Child, db
from models.records import ENTITIES, create_record, update_record
from models.schemas import dump_record
from models.sensitivity import RESTRICTED
from sync.pull_rows import shape_of
from tests.sync_server_helpers import child_fields, get, mutation, new_id, people_and_phones, user_named


def every_entity(phone, app) -> str:
    """A child with every kind of record, with values of every column type (dates, JSON, encrypted)."""
    child_id = new_id()
    fields = child_fields(other_names="Fictional Other", date_of_birth="2011-03-04", birth_year=2011,
                          age_estimation_method="documented", village="Fictional Pabo", parish="Fictional",
                          family_contacts="Fictional aunt", child_mother=True, risk_level="high",
                          armed_group="Fictional group", recruitment="Fictional account",
                          date_joined="2020-01-01", date_left="2025-06-01", how_left="escaped",
                          sexual_violence="Fictional", restricted_notes="Fictional restricted")
    muts = [
        mutation("child", child_id, fields=fields),
        mutation("consent", new_id(), fields={"child_id": child_id, "purpose": "services", "given_by": "caregiver",
                                              "given_on": "2026-10-02", "withdrawn_on": "2026-10-20"}),
        mutation("stage_transition", new_id(), fields={"child_id": child_id, "to_stage": "registered",
                                                       "occurred_on": "2026-10-03", "reason": "Fictional",
                                                       "details": {"by": "intake", "count": 2}}),
        mutation("assessment", new_id(), fields={"child_id": child_id, "kind": "health", "assessed_on": "2026-10-05",
                                                 "scores": {"distress": 12.5}, "risk_level": "medium",
                                                 "notes": "Fictional note"}),
        mutation("service", new_id(), fields={"child_id": child_id, "type": "education", "status": "active",
                                              "started_on": "2026-10-06", "provider": "Fictional provider"}),
        mutation("followup", new_id(), fields={"child_id": child_id, "kind": "visit", "due_on": "2026-10-10",
                                               "status": "done", "completed_on": "2026-10-10", "seen": True,
                                               "wellbeing": "good", "risk_level": "medium",
                                               "concerns": ["health", "school_dropout"], "notes": "Fictional"}),
        mutation("followup", new_id(), fields={"child_id": child_id, "kind": "visit", "due_on": "2026-12-10"}),
        mutation("consent", new_id(), fields={"child_id": child_id, "purpose": "referral", "given_by": "child",
                                              "given_on": "2026-10-02"}),
        mutation("referral", new_id(), fields={"child_id": child_id, "service_type": "vocational_training",
                                               "provider_name": "Fictional workshop", "reason": "Fictional"}),
        mutation("tracing_request", request_id := new_id(), fields={
            "inquirer_name": "Fictional Mother", "inquirer_relationship": "mother", "inquirer_contact": "0700 000000",
            "given_name": "Fictional", "sex": "male", "birth_year": 2012, "separation_date": "2024-05-01",
            "district": "Kitgum", "armed_group": "Fictional group"}),
        mutation("trace", new_id(), fields={"request_id": request_id, "kind": "radio_announcement",
                                            "done_on": "2026-11-21", "note": "Fictional"}),
    ]
    results = phone.push_ok(*muts)
    assert all(r["status"] == "applied" for r in results), [r for r in results if r["status"] != "applied"]
    with app.app_context():
        create_record("alert", {"key": f"{child_id}:rows:1", "rule": "rows", "severity": "urgent",
                                "child_id": get(Child, child_id).id, "recipient_id": user_named("cw1").id},
                      Actor(user=None, source="system"))
        db.session.commit()
    return child_id


def assert_same_as_dump_record(app, changes):
    with app.app_context():
        for change in changes:
            record = get(ENTITIES[change["entity"]], change["id"])
            expected = dump_record(record)
            # Same keys in the same order, same values: the JSON a device gets does not change.
            assert list(change["data"].items()) == list(expected.items()), change["entity"]
            assert change["version"] == record.version


def test_a_first_pull_sends_exactly_dump_record_for_every_entity(app, client):
    phones = people_and_phones(app, client)
    every_entity(phones["cw1"], app)
    every_entity(phones["cw2"], app)  # someone else's, never in cw1's pull
    changes = phones["cw1"].pull_all(limit=3)  # several pages
    assert {c["entity"] for c in changes} == set(ENTITIES)
    assert all(c["op"] == "upsert" for c in changes)
    assert_same_as_dump_record(app, changes)
    child = next(c for c in changes if c["entity"] == "child")
    assert child["data"]["caseworker"] == "cw1" and child["data"]["phase"]


def test_incremental_and_scope_added_pulls_send_exactly_dump_record(app, client):
    phones = people_and_phones(app, client)
    cw1, cw2 = phones["cw1"], phones["cw2"]
    child_id = every_entity(cw1, app)
    cw1.pull_all()
    cw2.pull_all()
    cw1.push_ok(mutation("child", child_id, op="update", base_version=1, fields={"risk_level": "low"}))
    later = cw1.pull_all()
    assert [c["entity"] for c in later] == ["child"]
    assert_same_as_dump_record(app, later)
    with app.app_context():
        update_record(get(Child, child_id), {"caseworker": "cw2"}, Actor(user=user_named("mgr"), source="api"))
        db.session.commit()
    added = cw2.pull_all()
    # The scope addition brings the child's records (the alert stays addressed to cw1, and the
    # tracing request, with its trace, stays with the caseworker who follows it).
    assert {c["entity"] for c in added} == set(ENTITIES) - {"alert", "tracing_request", "trace"}
    assert_same_as_dump_record(app, added)
    assert next(c for c in added if c["entity"] == "child")["data"]["caseworker"] == "cw2"


def test_restricted_columns_are_never_selected_for_a_pull(app):
    for entity, model in ENTITIES.items():
        names = {column.name for column in shape_of(model).columns}
        restricted = {attr.columns[0].name for attr in inspect(model).column_attrs
                      if attr.columns[0].info.get("sensitivity") == RESTRICTED}
        assert not names & restricted, entity
        if entity == "child":
            assert restricted  # the check above checks something
