"""Matching: blocking keys that meet across Acholi spelling variants, scores, the blind index holding no
plaintext, and the sweep. Every name here is fictional."""

from datetime import date

import pytest

from models import Actor, db
from models.matching import (
    MatchCandidate,
    MatchIndexed,
    MatchToken,
    decide,
    keys_of,
    name_key,
    name_words,
    score_pair,
    sweep,
    tokens_of,
)
from models.records import delete_record
from models.search import digest
from server import scheduler
from tests.factories import make_child, make_user


def keys(text):
    return {name_key(w) for w in name_words({"given_name": text})}


@pytest.mark.parametrize("a, b", [("Okello", "Akello"), ("Okello", "Okelo"), ("Ochen", "Ocen"),
                                  ("Atim", "Atimo"), ("Ong'wen", "Ongwen"), ("Aciro", "Achiro"),
                                  ("Oola", "Ola"), ("Ókéllo", "Okello")])
def test_spelling_variants_share_a_blocking_key(a, b):
    assert keys(a) == keys(b)


def test_names_written_apart_also_give_the_joined_word():
    assert "lakwena" in name_words({"family_name": "La Kwena"})
    assert keys_of({"given_name": "Atim", "family_name": "Lakwena"}) & keys_of({"given_name": "Atimo",
                                                                                "family_name": "La Kwena"})


def test_swapped_given_and_family_names_share_the_pair_key():
    swapped = keys_of({"given_name": "Lakwena", "family_name": "Atim"})
    assert keys_of({"given_name": "Atim", "family_name": "Lakwena"}) == swapped


def base(**kw):
    return {"given_name": "Akello", "family_name": "Atim", "other_names": None, "sex": "female",
            "birth_year": 2010, "district": "Kitgum", "sub_county": None, "parish": None,
            "village": "Fictional Pajimo", "armed_group": None, **kw}


def test_scores_rank_variants_above_strangers():
    same = score_pair(base(), base(given_name="Atimo", family_name="Okelo", birth_year=2011))
    other_sex = score_pair(base(), base(sex="male", given_name="Okello"))
    stranger = score_pair(base(), base(given_name="Ojara", family_name="Komakech", birth_year=2003,
                                       district="Gulu", village="Fictional Laroo"))
    assert same.score >= 0.72 > stranger.score
    assert other_sex.score < same.score
    assert same.signals["names"] >= 0.9 and stranger.signals["names"] < 0.6
    # Birth-circumstance names are a signal of their own, not a name match.
    twins = score_pair(base(given_name="Apio", family_name="Lamunu"), base(given_name="Apio", family_name="Adong"))
    assert twins.signals["birth_names"] == 1.0 and twins.signals["names"] < 0.7


def test_the_index_holds_keyed_digests_only(ctx):
    child = make_child(given_name="Akello", family_name="Lakwena")
    sweep()
    tokens = set(db.session.execute(db.select(MatchToken.token).where(MatchToken.record_id == child.id)).scalars())
    assert tokens == set(tokens_of({"given_name": "Akello", "family_name": "Lakwena", "sex": "female",
                                    "district": "Kitgum"}))
    assert all(len(t) == 32 and int(t, 16) >= 0 for t in tokens)
    # Not the name search's digests either: the two indexes cannot be joined on a word.
    assert digest("kelo") not in tokens and digest("lakwena") not in tokens


def test_the_sweep_finds_a_planted_duplicate_and_reindexes_only_what_changed(ctx):
    manager = make_user("manager")
    actor = Actor(user=manager, source="api")
    first = make_child(given_name="Akello", family_name="Atim", birth_year=2010, village="Fictional Pajimo")
    second = make_child(given_name="Atimo", family_name="Okelo", birth_year=2011, village="Fictional Pajimo")
    make_child(given_name="Ojara", family_name="Komakech", sex="male", birth_year=2004)
    result = sweep()
    assert result.reindexed == 3 and result.queued == 1
    (candidate,) = db.session.execute(db.select(MatchCandidate)).scalars().all()
    assert {candidate.child_id, candidate.other_child_id} == {first.id, second.id}
    assert candidate.kind == "child_child" and candidate.status == "pending"
    again = sweep()
    assert again.reindexed == 0 and again.pairs == 0  # nothing changed: nothing to score
    full = sweep(full=True)
    assert full.queued == 1  # the pending pair is re-scored, not duplicated
    assert db.session.execute(db.select(db.func.count()).select_from(MatchCandidate)).scalar_one() == 1
    decide(candidate, "dismiss", manager)
    assert sweep(full=True).queued == 0
    # A deleted child leaves the index at the next sweep.
    delete_record(second, actor)
    assert sweep().reindexed == 1
    assert not db.session.execute(db.select(MatchToken).where(MatchToken.record_id == second.id)).first()
    assert db.session.get(MatchIndexed, ("c", second.id)) is not None


def test_the_scheduler_runs_the_sweep(app):
    assert "matching_sweep" in [job.id for job in scheduler.JOBS]
    with app.app_context():
        make_child(given_name="Akello", family_name="Atim", identified_on=date(2025, 1, 10))
        make_child(given_name="Akelo", family_name="Atimo", identified_on=date(2025, 1, 10))
        db.session.commit()
    job = next(job for job in scheduler.JOBS if job.id == "matching_sweep")
    scheduler.run_job(app, job)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(MatchCandidate)).scalar_one() == 1
