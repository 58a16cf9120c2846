"""Matching: blocking keys that meet across Acholi spelling variants, scores, the blind index holding no
plaintext, and the sweep. Every name here is fictional."""

from datetime import date

import pytest

from models import Actor, Child, db
from models.matching import (
    MatchCandidate,
    MatchIndexed,
    MatchToken,
    agree,
    decide,
    keys_of,
    match_records,
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


def test_blocking_needs_sex_district_and_birth_years_to_agree():
    assert agree("female", "Gulu", 2010, "female", "Gulu", 2013)
    assert agree("female", None, None, "unknown", "Gulu", 2001)  # what one side does not know agrees
    assert not agree("female", "Gulu", 2010, "male", "Gulu", 2010)
    assert not agree("female", "Gulu", 2010, "female", "Amuru", 2010)
    assert not agree("female", "Gulu", 2010, "female", "Gulu", 2014)


def pairs_of(child_id):
    return {frozenset((c.child_id, c.other_child_id)) for c in db.session.execute(db.select(MatchCandidate)).scalars()
            if child_id in (c.child_id, c.other_child_id)}


def test_the_incremental_sweep_blocks_as_the_full_one(ctx):
    """Few changes go through the token index, many are blocked in memory: the same pairs either way."""
    names = [("Akello", "Atim"), ("Atimo", "Akelo"), ("Akello", "Atim"), ("Lamunu", "Aciro"), ("Lamunu", "Achiro")]
    children = [make_child(given_name=g, family_name=f, birth_year=2010 + n % 2) for n, (g, f) in enumerate(names)]
    children += [make_child(given_name=f"Fictional{c}", family_name=f"Other{c}") for c in "bdfgjkmnprstvwz"]
    make_child(given_name="Akello", family_name="Atim", birth_year=2016)  # too far apart in age
    make_child(given_name="Akello", family_name="Atim", district="Gulu")  # another district
    full = sweep(threshold=0.0)  # every child is new: blocked in memory
    assert full.reindexed == 22 and full.pairs == 3 + 1
    first = children[0]
    assert len(pairs_of(first.id)) == 2
    db.session.execute(db.delete(MatchCandidate))
    db.session.execute(db.update(Child).where(Child.id == first.id).values(version=Child.version + 1))
    again = sweep(threshold=0.0)  # one of 22 changed: through the index
    assert again.reindexed == 1 and again.pairs == 2 and len(pairs_of(first.id)) == 2


def test_a_single_named_child_is_matched_on_the_spot_not_by_the_sweep(ctx):
    single = make_child(given_name="Akello", family_name=None, birth_year=2010)
    named = make_child(given_name="Akelo", family_name="Lamunu", birth_year=2010)
    sweep(threshold=0.0)
    assert pairs_of(single.id) == set()  # one shared name tells no one apart in bulk
    match_records(child_ids=[single.id], threshold=0.0)
    assert pairs_of(single.id) == {frozenset((single.id, named.id))}
