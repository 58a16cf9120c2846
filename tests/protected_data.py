"""Data for the key-rotation and backup tests: every table filled the way the app fills it, with one
planted (fictional) name to look for in ciphertexts and backup files."""

from sqlalchemy import Text, select, type_coerce

from models import crypto, db
from tests.sync_server_helpers import child_fields, mutation, new_id, people_and_phones
from tests.test_sync_push import second_phone

PLANTED = "Okwerazyx"  # fictional, and found nowhere else


def fill(app, client, runner) -> str:
    """Demo children with their records and history, plus a sync conflict naming PLANTED."""
    seeded = runner.invoke(args=["demo", "seed", "--children", "8"])
    assert seeded.exit_code == 0, seeded.output
    phones = people_and_phones(app, client)
    phone = phones["cw1"]
    child_id = new_id()
    (created,) = phone.push_ok(mutation("child", child_id, fields=child_fields(
        given_name=PLANTED, risk_level="low", current_location=f"Camp of {PLANTED}")))
    assert created["status"] == "applied", created
    tablet = second_phone(app, client, "cw1")
    phone.pull_all()
    tablet.pull_all()
    phone.push_ok(mutation("child", child_id, op="update", base_version=1, fields={"risk_level": "high"}))
    (conflict,) = tablet.push_ok(mutation("child", child_id, op="update", base_version=1,
                                          fields={"risk_level": "medium", "village": f"{PLANTED} village"}))
    assert conflict["status"] == "conflict", conflict
    return child_id


def table_rows(skip=()) -> dict[str, list]:
    """Every table's rows, decrypted, in a stable order."""
    return {table.name: sorted((tuple(row) for row in db.session.execute(select(table))), key=repr)
            for table in db.metadata.sorted_tables if table.name not in skip}


def stored_rows() -> dict[str, list]:
    """Every table's rows as stored: encrypted columns as their sealed text."""
    rows = {}
    for table in db.metadata.sorted_tables:
        columns = [type_coerce(c, Text()) if isinstance(c.type, crypto.EncryptedText) else c for c in table.columns]
        rows[table.name] = sorted((tuple(row) for row in db.session.execute(select(*columns))), key=repr)
    return rows
