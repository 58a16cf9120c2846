"""Name search through the blind index (issue 8, finding 10): names, aliases and villages found by
keyed digests of their normalised words, case codes by 4+ characters, always within the user's scope,
and no plaintext in the database. Every name here is fictional."""

import re
from pathlib import Path

import pytest
from sqlalchemy import event, make_url
from sqlalchemy import text as sql_text

from models import Child, ChildSearchToken, db
from models.search import delete_tokens, normalise_word, words_of
from tests.factories import make_child, make_user, token_for
from tests.sync_server_helpers import child_fields, get, mutation, new_id, people_and_phones, user_named
from tests.web_client import sign_in, text


@pytest.fixture
def people(app):
    with app.app_context():
        users = {"manager": make_user("manager", username="s.manager"),
                 "cw": make_user("caseworker", username="s.cw"),
                 "cw2": make_user("caseworker", username="s.cw2")}
        db.session.commit()
        return {key: user.username for key, user in users.items()}


@pytest.fixture
def children(app, people):
    """Okello Ocen of Pabbo, alias Lakwo, in s.cw's caseload; an Akello in s.cw2's; one other child."""
    with app.app_context():
        cw, cw2 = user_named("s.cw"), user_named("s.cw2")
        okello = make_child(cw, given_name="Okello", family_name="Ocen", other_names="Lakwo, Toto-Ber",
                            village="Pabbo")
        akello = make_child(cw2, given_name="Akello", family_name="Demo-Atim", village="Fictional Alero")
        other = make_child(cw, given_name="Fictional", family_name="Demo-Labongo", village="Fictional Anaka")
        db.session.commit()
        return {"okello": okello.case_code, "akello": akello.case_code, "other": other.case_code}


def api_search(client, app, username, q):
    with app.app_context():
        headers = token_for(client, user_named(username))
    response = client.get("/api/v1/children", query_string={"q": q}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return sorted(item["case_code"] for item in response.get_json()["items"])


def test_spelling_variants_of_acholi_names_normalise_to_one_word():
    assert {normalise_word(w) for w in ("Okello", "Akello", "Kello", "Ókéllo", "OKELO", "okkello")} == {"kelo"}
    assert {normalise_word(w) for w in ("Ochen", "Ocen", "Acen", "Achen")} == {"cen"}
    assert normalise_word("Opiyo") == normalise_word("Apiyo") == "piyo"
    assert normalise_word("Oola") == "ola"  # a vowel follows: no prefix to drop
    assert normalise_word("Ojo") == "ojo"  # too short to be a prefixed name
    assert words_of("Toto-Ber  Ong'wen, J.") == {"toto", "ber", "ngwen"}  # Ongwen/Angwen


@pytest.mark.parametrize("q, found", [
    ("akello", {"okello", "akello"}),
    ("Ókéllo", {"okello", "akello"}),
    ("Kello", {"okello", "akello"}),
    ("Ochen", {"okello"}),
    ("ocen okelo", {"okello"}),  # every word must match
    ("pabbo", {"okello"}),  # the village
    ("Lakwo", {"okello"}),  # an alias
    ("toto", {"okello"}),
    ("okello nowhere", set()),
    ("kel", set()),  # a part of a word is not a word
])
def test_a_manager_finds_children_by_name_alias_and_village_variants(client, app, children, q, found):
    assert api_search(client, app, "s.manager", q) == sorted(children[k] for k in found)


def test_any_four_characters_of_a_case_code_find_it(client, app, children):
    code = children["okello"]
    compact = code.replace("-", "")
    for fragment in (code, compact.lower(), code[2:7], code[2:7].lower(), compact[3:7], compact[:4]):
        assert code in api_search(client, app, "s.manager", fragment), fragment
    assert code[5:9] in compact and code in api_search(client, app, "s.manager", code[5:9])
    assert api_search(client, app, "s.manager", compact[:3]) == []  # three characters are too few


def test_a_caseworker_finds_only_their_own_caseload(client, app, children):
    assert api_search(client, app, "s.cw", "akello") == [children["okello"]]
    assert api_search(client, app, "s.cw2", "okello") == [children["akello"]]
    assert api_search(client, app, "s.cw2", children["okello"]) == []
    web = app.test_client()
    assert sign_in(web, "s.cw2").status_code == 302
    page = text(web.get("/children", query_string={"q": "Okello"}))
    assert children["akello"] in page and children["okello"] not in page


def test_the_web_children_list_searches_by_name_and_code(app, children):
    web = app.test_client()
    assert sign_in(web, "s.manager").status_code == 302
    page = text(web.get("/children", query_string={"q": "ochen"}))
    assert children["okello"] in page and children["akello"] not in page and children["other"] not in page
    page = text(web.get("/children", query_string={"q": children["akello"].replace("-", "")[2:6].lower()}))
    assert children["akello"] in page and children["okello"] not in page


def test_an_edit_rewrites_the_tokens(client, app, children):
    with app.app_context():
        headers = token_for(client, user_named("s.manager"))
        child = db.session.execute(db.select(Child).where(Child.case_code == children["okello"])).scalar_one()
        child_id, version = child.id, child.version
    response = client.patch(f"/api/v1/children/{child_id}", json={"given_name": "Opiyo", "village": "Fictional Paicho"},
                            headers={**headers, "If-Match": f'"{version}"'})
    assert response.status_code == 200, response.get_json()
    assert api_search(client, app, "s.manager", "okello") == [children["akello"]]  # the old name is gone
    assert api_search(client, app, "s.manager", "pabbo") == []
    assert api_search(client, app, "s.manager", "apiyo paicho") == [children["okello"]]
    assert api_search(client, app, "s.manager", "ocen") == [children["okello"]]  # unchanged fields stay


def test_retention_can_forget_a_childs_tokens(client, app, children):
    with app.app_context():
        child_id = db.session.execute(db.select(Child.id).where(Child.case_code == children["okello"])).scalar_one()
        delete_tokens([child_id])
        db.session.commit()
    assert api_search(client, app, "s.manager", "okello") == [children["akello"]]


def count_token_writes(app):
    writes = []
    with app.app_context():
        engine = db.engine

    def before(conn, cursor, statement, parameters, context, executemany):
        if re.match(r"\s*(INSERT INTO|DELETE FROM) child_search_token", statement):
            writes.append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", before)
    return writes


def test_sync_push_creates_and_edits_are_indexed_with_one_insert_per_batch(app, client):
    phones = people_and_phones(app, client)
    ids = [new_id() for _ in range(3)]
    names = ["Ochen", "Akello", "Opiyo"]
    writes = count_token_writes(app)
    # A batch of creates only: the tokens of every new child, written with the batch.
    results = phones["cw1"].push_ok(*(mutation("child", i, fields=child_fields(given_name=n, village="Fictional Pajule"))
                                      for i, n in zip(ids, names, strict=True)))
    assert [r["status"] for r in results] == ["applied"] * 3
    assert writes == ["INSERT"]
    with app.app_context():
        codes = {n: get(Child, i).case_code for n, i in zip(names, ids, strict=True)}
    assert api_search(client, app, "cw1", "ocen") == [codes["Ochen"]]
    assert api_search(client, app, "cw1", "pajule") == sorted(codes.values())
    # Edits of three children in one batch: one DELETE and one INSERT for them all.
    writes.clear()
    results = phones["cw1"].push_ok(*(mutation("child", i, op="update", base_version=1,
                                               fields={"given_name": f"{n} Lakor"}) for i, n in zip(ids, names, strict=True)))
    assert [r["status"] for r in results] == ["applied"] * 3
    assert writes == ["DELETE", "INSERT"]
    assert api_search(client, app, "cw1", "lakor") == sorted(codes.values())
    # An edit that does not touch a searched field writes no token.
    writes.clear()
    phones["cw1"].push_ok(mutation("child", ids[0], op="update", base_version=2, fields={"risk_level": "high"}))
    assert writes == []


def test_the_database_holds_no_searchable_plaintext(app, children, database_url):
    planted = ["okello", "okelo", "akello", "pabbo", "lakwo", "labongo"]
    with app.app_context():
        tokens = db.session.execute(db.select(ChildSearchToken.token)).scalars().all()
        rows = " ".join(str(row) for table in ("child", "child_search_token")
                        for row in db.session.execute(sql_text(f"SELECT * FROM {table}")).all()).lower()
        db.session.remove()
        db.engine.dispose()  # close connections so SQLite checkpoints its WAL into the file
    # Three children, each with several words: every token a 16-byte digest in hex, never a word.
    assert len(tokens) >= 12 and all(re.fullmatch(r"[0-9a-f]{32}", t) for t in tokens)
    assert not [w for w in planted if w in rows]
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        data = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()).lower()
        assert not [w for w in planted if w.encode() in data]


def test_reindex_rebuilds_the_index_from_the_encrypted_names(app, client, runner, children):
    with app.app_context():
        db.session.execute(ChildSearchToken.__table__.delete())
        db.session.commit()
    result = runner.invoke(args=["search", "reindex", "--batch-size", "2"])
    assert result.exit_code == 0 and "3 children reindexed." in result.output, result.output
    assert api_search(client, app, "s.manager", "akello") == sorted([children["okello"], children["akello"]])
    assert api_search(client, app, "s.manager", "labongo") == [children["other"]]
