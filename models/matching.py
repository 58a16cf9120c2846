"""Matching (issue 14): tracing requests against children, and children against children (possible
duplicate registrations), into a review queue a manager decides. Plain functions; docs/tracing.md.

Blocking: each record's names and aliases are cut into words by the name search's normaliser
(models.search.words_of: O-/A- prefix, ch/c, doubled letters, accents, apostrophes); each word gives a
short *key* (its final vowels dropped: Atim/Atimo, Okello/Okelo → "tim", "kel"), and ``match_token``
keeps HMAC digests, under the search key, of every key and of every unordered pair of keys of one
record. The database so holds no searchable plaintext, only which records share a key. Candidates are
the records sharing the most digests with the one being matched (or, in the sweep, sharing a pair);
only those are read and decrypted, in memory, and scored.

Scoring (0 to 1) is a weighted mean of signals: names (rapidfuzz on normalised words, best pairing, so
swapped given/family names still meet), birth-circumstance names and clan names (each a signal of their
own: they are common, so they say little alone), sex, age, place of origin, separation, armed group.
A pair at or above ``MATCH_THRESHOLD`` goes to ``match_candidate``, pending until a manager confirms or
dismisses it; a decided pair is never proposed again.
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from rapidfuzz import fuzz
from sqlalchemy import JSON, Float, ForeignKey, Index, String, delete, func, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from models import districts
from models.base import UTCDateTime, db, upsert_insert, utcnow
from models.children import Child
from models.search import digest, words_of
from models.tracing import TracingRequest

CHILD, REQUEST = "c", "r"
KINDS = {"request_child": "tracing request ↔ child", "child_child": "possible duplicate registration"}
STATUSES = ("pending", "confirmed", "dismissed")
DEFAULT_THRESHOLD = 0.85
# At most this many best-blocked candidates are scored for one record.
MAX_CANDIDATES = 50
# A sweep key held by more records than this is too common to tell anyone apart: the sweep skips it.
MAX_BLOCK = 300

# Names given for the circumstances of birth, normalised (models.search.normalise_word): Opio/Apio and
# Ocen/Acen (twins), Okello/Akello (after twins), Ocan/Acan (in hardship), Odoc/Adoc (feet first).
# Many children share them, so they are compared apart from the other names. A programme extends it.
BIRTH_NAMES = frozenset({"pio", "piyo", "cen", "kelo", "can", "doc"})
# Acholi clan (chiefdom) names a child may give as a name; compared apart, like birth names.
CLAN_NAMES = frozenset({"payira", "pajule", "patiko", "puranga", "pabo", "atiak", "lamogi",
                        "koc", "alero", "parabongo", "paimol", "palaro", "pawel"})
WEIGHTS = {"names": 0.36, "birth_names": 0.04, "clan": 0.03, "sex": 0.10, "age": 0.12, "origin": 0.25,
           "separation": 0.04, "armed_group": 0.06}
NEUTRAL = 0.5  # a signal one side does not know: neither for nor against
SEX_CONTRADICTION = 0.7  # the total is multiplied by this when both sexes are known and differ
NAME_FIELDS = ("given_name", "family_name", "other_names")
COMPARED = (*NAME_FIELDS, "sex", "birth_year", "district", "sub_county", "parish", "village", "armed_group")
INDEXED = (*NAME_FIELDS, "sex", "district")  # what the blocking keys are made of
LIVE = {"c": "deleted_at", "r": "status"}  # what says whether a record is still matched (is_live)
# A record's side of the separation signal: a request's own, a child's recruitment date and exit place.
SEPARATION = {"c": ("date_joined", "exit_place"), "r": ("separation_date", "separation_place")}


class MatchToken(db.Model):
    """A keyed digest of one name key (or pair of keys) of a child or a request: never the name."""

    __tablename__ = "match_token"

    owner: Mapped[str] = mapped_column(String(1), primary_key=True)  # c: child, r: tracing request
    record_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    # k: one name key, p: a pair of keys (matching one record), s: a pair with sex and district (the sweep).
    kind: Mapped[str] = mapped_column(String(1))

    # The one secondary index: who holds a token. A second (by kind) made every re-index a third slower
    # for queries that read a record's own tokens by primary key or scan the table once per sweep.
    __table_args__ = (Index("ix_match_token_token", "token", "owner", "record_id"),)


class MatchIndexed(db.Model):
    """Which version of a record its tokens were made from: the sweep re-indexes only what changed."""

    __tablename__ = "match_indexed"

    owner: Mapped[str] = mapped_column(String(1), primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int]


class MatchCandidate(db.Model):
    """One proposed pair in the review queue. ``signals`` holds the signal scores (numbers only)."""

    __tablename__ = "match_candidate"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    # request_child: request_id and child_id; child_child: child_id < other_child_id.
    pair_key: Mapped[str] = mapped_column(String(80), unique=True)
    request_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tracing_request.id", ondelete="CASCADE"),
                                                         index=True)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True)
    other_child_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("child.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    signals: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_match_candidate_status_score", "status", "score"),)


# --- names -----------------------------------------------------------------------------------------


def name_key(word: str) -> str:
    """A normalised word's blocking key: without its final vowels (Atim/Atimo, Okelo/Okello)."""
    stripped = word.rstrip("aeiouy")
    return stripped if len(stripped) >= 2 else word


def cached_words(text, memo: dict | None = None) -> frozenset:
    """``words_of`` through ``memo``, a dict that lives for one batch of records: names repeat a lot,
    and the plaintext is forgotten with the batch (no process-wide cache of names)."""
    if not text:
        return frozenset()
    if memo is None:
        return frozenset(words_of(text))
    found = memo.get(text)
    if found is None:
        found = memo[text] = frozenset(words_of(text))
    return found


def name_words(values: dict, memo: dict | None = None) -> set[str]:
    """The normalised words of a record's names and aliases; written-apart names also joined
    ("La Kwena" gives la, kwena and lakwena)."""
    words = set()
    for name in NAME_FIELDS:
        text = values.get(name)
        words |= cached_words(text, memo)
        if text and " " in text.strip():
            words |= cached_words(text.replace(" ", ""), memo)
    return words


def keys_of(values: dict, memo: dict | None = None) -> set[tuple[str, str]]:
    """The plaintext blocking keys of a record, as (kind, key): each word's key (k), each unordered pair
    of keys (p), and each pair with the sex and the district (s), which the sweep blocks on. A record
    whose sex or district is not known gives its pairs with every sex and every district, so it still
    meets the records that know them."""
    keys = sorted({name_key(w) for w in name_words(values, memo)})
    pairs = [f"{a}|{b}" for i, a in enumerate(keys) for b in keys[i + 1:]] or keys  # one name: itself
    sexes = (values["sex"],) if values.get("sex") in ("female", "male") else ("female", "male")
    places = (values["district"],) if values.get("district") else (*districts.allowed(), None)
    return {*(("k", k) for k in keys), *(("p", p) for p in pairs if "|" in p),
            *(("s", f"{p}|{sex}|{place}") for p in pairs for sex in sexes for place in places)}


def tokens_of(values: dict, memo: dict | None = None) -> dict[str, str]:
    """``{digest: kind}`` of a record's keys: HMAC under the search key, never the key itself."""
    return {digest(f"match:{kind}:{key}"): kind for kind, key in keys_of(values, memo)}


# --- the index -------------------------------------------------------------------------------------


def read_records(owner: str, ids, fields=None) -> dict:
    """``{id: {field: value}}`` for these records, decrypted (in memory only), in chunks of ids.
    ``fields``: the columns to read (default: all that scoring compares)."""
    model = Child if owner == CHILD else TracingRequest
    names = ["id", "version", LIVE[owner], *(fields or (*COMPARED, *SEPARATION[owner]))]
    columns = [getattr(model, name) for name in names]
    ids, out = list(ids), {}
    for start in range(0, len(ids), 900):  # SQLite's limit on bound parameters
        rows = db.session.execute(select(*columns).where(model.id.in_(ids[start:start + 900]))).all()
        out.update({row[0]: dict(zip(names, row, strict=True)) for row in rows})
    return out


def reindex(owner: str, records: dict) -> None:
    """Rewrite the tokens of these records (``{id: values}``): one DELETE and one INSERT each table."""
    if not records:
        return
    ids = list(records)
    connection = db.session.connection()
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        connection.execute(delete(MatchToken).where(MatchToken.owner == owner, MatchToken.record_id.in_(chunk)))
        connection.execute(delete(MatchIndexed).where(MatchIndexed.owner == owner, MatchIndexed.record_id.in_(chunk)))
    live = {i: v for i, v in records.items() if is_live(owner, v)}
    memo: dict = {}
    rows = [{"owner": owner, "record_id": i, "token": t, "kind": kind}
            for i, v in live.items() for t, kind in sorted(tokens_of(v, memo).items())]
    if rows:
        connection.execute(insert(MatchToken.__table__), rows)
    connection.execute(insert(MatchIndexed.__table__),
                       [{"owner": owner, "record_id": i, "version": v["version"]} for i, v in records.items()])


def is_live(owner: str, values: dict) -> bool:
    """Deleted children and closed or reunified requests are matched no more."""
    if owner == CHILD:
        return values["deleted_at"] is None
    return values["status"] in ("open", "matched")


def stale_ids(owner: str) -> list:
    """Records whose tokens were made from an older version (or never): one outer join."""
    model = Child if owner == CHILD else TracingRequest
    return db.session.execute(
        select(model.id).outerjoin(MatchIndexed, (MatchIndexed.record_id == model.id) & (MatchIndexed.owner == owner))
        .where((MatchIndexed.version.is_(None)) | (MatchIndexed.version != model.version))
    ).scalars().all()


# --- scoring ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    score: float
    signals: dict


@dataclass(frozen=True)
class Profile:
    """A record's values as scoring compares them, normalised once per record (not once per pair)."""

    names: frozenset
    birth_names: frozenset
    clans: frozenset
    sex: str | None
    birth_year: int | None
    district: str | None
    places: tuple  # the words of sub-county, parish and village
    separation_date: date | None
    separation_place: frozenset
    armed_group: frozenset


def profile(values: dict, memo: dict | None = None) -> Profile:
    words = name_words(values, memo)
    # A request's own separation; for a child, its recruitment date and the place it left the group.
    sep_date, sep_place = ((values.get("separation_date"), values.get("separation_place"))
                           if "separation_date" in values else (values.get("date_joined"), values.get("exit_place")))
    return Profile(
        names=frozenset(words - BIRTH_NAMES - CLAN_NAMES), birth_names=frozenset(words & BIRTH_NAMES),
        clans=frozenset(words & CLAN_NAMES), sex=values.get("sex"), birth_year=values.get("birth_year"),
        district=values.get("district"), places=tuple(cached_words(values.get(n), memo) for n in ("sub_county", "parish", "village")),
        separation_date=sep_date if isinstance(sep_date, date) else None,
        separation_place=cached_words(sep_place, memo), armed_group=cached_words(values.get("armed_group"), memo))


# Word pairs already compared in the batch being scored: names repeat a lot. ``score_pairs`` empties it
# when its batch is done, so no plaintext outlives the batch (threads sharing it only lose entries).
_similar_memo: dict = {}


def _similar(a: str, b: str) -> float:
    """1 for one word, 0.95 for one key (Atim/Atimo), else rapidfuzz's ratio rescaled so that the
    half-similarity of two unrelated names counts for nothing."""
    if a == b:
        return 1.0
    found = _similar_memo.get((a, b))
    if found is None:
        found = 0.95 if name_key(a) == name_key(b) else max(0.0, (fuzz.ratio(a, b) / 100 - 0.5) * 2)
        _similar_memo[(a, b)] = found
    return found


def _best_mean(words_a, words_b) -> float:
    return sum(max(_similar(a, b) for b in words_b) for a in words_a) / len(words_a)


def words_score(words_a, words_b) -> float | None:
    """Each word paired with its most similar word on the other side (so swapped names still meet),
    mostly from the side with fewer words: a name missing on one side costs a little, not all."""
    if not words_a or not words_b:
        return None
    short, long_ = (words_a, words_b) if len(words_a) <= len(words_b) else (words_b, words_a)
    return 0.75 * _best_mean(short, long_) + 0.25 * _best_mean(long_, short)


def _set_signal(a, b) -> float:
    if not a or not b:
        return NEUTRAL
    return 1.0 if a & b else 0.0


def origin_score(a: Profile, b: Profile) -> float:
    parts = []
    if a.district and b.district:
        parts.append((0.25, 1.0 if a.district == b.district else 0.0))
    for place_a, place_b in zip(a.places, b.places, strict=True):
        similar = words_score(place_a, place_b)
        if similar is not None:
            parts.append((0.25, similar))
    if not parts:
        return NEUTRAL
    return sum(w * s for w, s in parts) / sum(w for w, _ in parts)


def age_score(a, b) -> float:
    if a is None or b is None:
        return NEUTRAL
    return {0: 1.0, 1: 0.85, 2: 0.6, 3: 0.3}.get(abs(a - b), 0.0)


def separation_score(a: Profile, b: Profile) -> float:
    parts = []
    if a.separation_date and b.separation_date:
        months = abs((a.separation_date - b.separation_date).days) / 30.4
        parts.append(1.0 if months <= 3 else 0.6 if months <= 12 else 0.0)
    place = words_score(a.separation_place, b.separation_place)
    if place is not None:
        parts.append(place)
    return sum(parts) / len(parts) if parts else NEUTRAL


def score_profiles(a: Profile, b: Profile) -> Scored:
    names = words_score(a.names, b.names)
    if names is None:  # only birth or clan names on one side: they stand in, weakly
        names = 0.6 * _set_signal(a.names | a.birth_names | a.clans, b.names | b.birth_names | b.clans)
    known_sex = {a.sex, b.sex} <= {"female", "male"}
    signals = {
        "names": names,
        "birth_names": _set_signal(a.birth_names, b.birth_names),
        "clan": _set_signal(a.clans, b.clans),
        "sex": (1.0 if a.sex == b.sex else 0.0) if known_sex else NEUTRAL,
        "age": age_score(a.birth_year, b.birth_year),
        "origin": origin_score(a, b),
        "separation": separation_score(a, b),
        "armed_group": _set_signal(a.armed_group, b.armed_group),
    }
    total = sum(WEIGHTS[k] * v for k, v in signals.items())
    if signals["sex"] == 0.0:  # a boy and a girl are not one child, whatever their names
        total *= SEX_CONTRADICTION
    return Scored(round(total, 4), {k: round(v, 3) for k, v in signals.items()})


def score_pair(a: dict, b: dict) -> Scored:
    """How likely two records (a request's sought child or a child, and a child) are one child."""
    return score_profiles(profile(a), profile(b))


# --- candidates ------------------------------------------------------------------------------------


def pair_key(kind: str, left, right) -> str:
    if kind == "child_child":
        left, right = sorted((left, right), key=str)
    return f"{kind[0]}:{left}:{right}"


def blocked_pairs(left_owner: str) -> list[tuple]:
    """The sweep's pairs (left record, child) sharing a sweep key: a pair of name keys with the same
    sex and district. One self-join over the token index; a key held by more than MAX_BLOCK records
    (a name pair too common to tell anyone apart by) is left to the other signals of smaller blocks."""
    left = MatchToken.__table__.alias("left_")
    right = MatchToken.__table__.alias("right_")
    common = (select(MatchToken.token).where(MatchToken.kind == "s").group_by(MatchToken.token)
              .having(func.count() > MAX_BLOCK))
    stmt = (select(left.c.record_id, right.c.record_id).distinct().select_from(left)
            .join(right, (right.c.token == left.c.token) & (right.c.owner == CHILD))
            .where(left.c.owner == left_owner, left.c.kind == "s", left.c.token.not_in(common)))
    if left_owner == CHILD:
        stmt = stmt.where(left.c.record_id < right.c.record_id)
    return db.session.execute(stmt).all()


def _decided_keys(keys) -> set[str]:
    keys, out = list(keys), set()
    for start in range(0, len(keys), 900):
        out |= set(db.session.execute(select(MatchCandidate.pair_key).where(
            MatchCandidate.pair_key.in_(keys[start:start + 900]), MatchCandidate.status != "pending")).scalars())
    return out


def _profiles(owner: str, ids, cache: dict) -> dict:
    """Profiles of these records (None for one no longer matched), read and decrypted once per ``cache``:
    a sweep keeps one cache for all its batches, one record's matching one for its call."""
    missing = [i for i in ids if (owner, i) not in cache]
    memo: dict = {}
    for record_id, values in read_records(owner, missing).items():
        cache[(owner, record_id)] = profile(values, memo) if is_live(owner, values) else None
    return {i: cache.get((owner, i)) for i in ids}


def score_pairs(pairs, left_owner: str, threshold: float, cache: dict | None = None) -> list[dict]:
    """Rows of ``match_candidate`` for the pairs scoring at or above ``threshold``."""
    pairs = [(a, b) for a, b in pairs if a != b]
    if not pairs:
        return []
    cache = {} if cache is None else cache
    kind = "child_child" if left_owner == CHILD else "request_child"
    lefts = _profiles(left_owner, {a for a, _ in pairs}, cache)
    children = _profiles(CHILD, {b for _, b in pairs}, cache)
    rows = []
    try:
        scores = [(a, b, score_profiles(lefts[a], children[b])) for a, b in pairs
                  if lefts[a] is not None and children[b] is not None]
    finally:
        _similar_memo.clear()
    for a, b, scored in scores:
        if scored.score < threshold:
            continue
        first, second = (sorted((a, b), key=str) if kind == "child_child" else (a, b))
        rows.append({
            "id": uuid.uuid4(), "kind": kind, "pair_key": pair_key(kind, a, b),
            "request_id": first if kind == "request_child" else None,
            "child_id": second if kind == "request_child" else first,
            "other_child_id": second if kind == "child_child" else None,
            "score": scored.score, "signals": scored.signals, "status": "pending",
        })
    decided = _decided_keys(r["pair_key"] for r in rows)
    return [r for r in rows if r["pair_key"] not in decided]


def save_candidates(rows: list[dict]) -> int:
    """Insert new pending pairs and refresh the score of pending ones: one upsert of many rows."""
    if not rows:
        return 0
    now = utcnow()
    stmt = upsert_insert(MatchCandidate.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["pair_key"],
        set_={"score": stmt.excluded.score, "signals": stmt.excluded.signals, "updated_at": now},
        where=MatchCandidate.__table__.c.status == "pending")
    connection = db.session.connection()
    for start in range(0, len(rows), 500):
        connection.execute(stmt, [{**r, "created_at": now, "updated_at": now} for r in rows[start:start + 500]])
    return len(rows)


def refresh(owner: str, ids) -> dict:
    """Re-index these records (reading only what their keys need) and return those values."""
    records = read_records(owner, ids, INDEXED)
    reindex(owner, records)
    return records


def match_records(*, child_ids=(), request_ids=(), threshold: float = DEFAULT_THRESHOLD) -> int:
    """After a commit that created or changed these records: re-index them and queue their candidates
    (requests against children, children against children). Flushes, never commits."""
    found = 0
    for owner, ids in ((CHILD, child_ids), (REQUEST, request_ids)):
        records = refresh(owner, list(ids))
        pairs, requests = [], []
        for record_id, values in records.items():
            kinds = blocking_kinds(values)
            pairs += [(record_id, c) for c in blocked_records(CHILD, owner, record_id, kinds)]
            if owner == CHILD:  # a child is also a candidate for the requests that block on it
                requests += [(r, record_id) for r in blocked_records(REQUEST, CHILD, record_id, kinds)]
        found += save_candidates(score_pairs(pairs, owner, threshold))
        found += save_candidates(score_pairs(requests, REQUEST, threshold))
    return found


def blocking_kinds(values: dict) -> tuple[str, ...]:
    """Tokens to block one record on: its pairs of name keys (p, s), or its one key when it has one name."""
    return ("p", "s") if len({name_key(w) for w in name_words(values)}) > 1 else ("k",)


def blocked_records(owner: str, of_owner: str, record_id, kinds=("p", "s"), limit: int = MAX_CANDIDATES) -> list:
    """Records of ``owner`` sharing the most tokens of these kinds with one record of ``of_owner``
    (itself left out). Its tokens first, then one grouped lookup of them in the token index: as one
    join, SQLite without statistics scanned every child's tokens."""
    tokens = db.session.execute(select(MatchToken.token).where(
        MatchToken.owner == of_owner, MatchToken.record_id == record_id, MatchToken.kind.in_(kinds))).scalars().all()
    if not tokens:
        return []
    return db.session.execute(
        select(MatchToken.record_id)
        .where(MatchToken.token.in_(tokens), MatchToken.owner == owner, MatchToken.record_id != record_id)
        .group_by(MatchToken.record_id).order_by(func.count().desc(), MatchToken.record_id).limit(limit)
    ).scalars().all()


@dataclass
class SweepResult:
    reindexed: int
    pairs: int
    queued: int


def sweep(threshold: float = DEFAULT_THRESHOLD, *, full: bool = False) -> SweepResult:
    """The scheduled sweep: re-index what changed since its tokens were made (children written by sync
    or the CLI, which are not matched on the spot), then block and score the pairs that involve a
    changed record; ``full`` scores every pair (after lowering the threshold). Flushes, never commits."""
    changed = set()
    for owner in (CHILD, REQUEST):
        stale = stale_ids(owner)
        for start in range(0, len(stale), 2000):
            changed |= set(refresh(owner, stale[start:start + 2000]))
    queued = pairs = 0
    cache: dict = {}
    for owner in (REQUEST, CHILD):
        blocked = [p for p in blocked_pairs(owner) if full or p[0] in changed or p[1] in changed]
        blocked.sort()  # batches of neighbouring ids reuse the records already read
        pairs += len(blocked)
        for start in range(0, len(blocked), 20000):
            queued += save_candidates(score_pairs(blocked[start:start + 20000], owner, threshold, cache))
    return SweepResult(len(changed), pairs, queued)


# --- the review queue ------------------------------------------------------------------------------


def decide(candidate: MatchCandidate, decision: str, by, *, override_reason: str | None = None) -> None:
    """A manager's decision. Confirming a request ↔ child pair links them (models.tracing.link);
    confirming two children records them as one child registered twice (merging is not done yet)."""
    from models.errors import Problem
    from models.tracing import link

    if decision not in ("confirm", "dismiss"):
        raise Problem("validation_error", "Decide 'confirm' or 'dismiss'.", {"fields": {"decision": ["Unknown."]}})
    if candidate.status != "pending":
        raise Problem("already_decided", f"This match was already {candidate.status}.")
    candidate.status = "confirmed" if decision == "confirm" else "dismissed"
    candidate.decided_by_id, candidate.decided_at = by.id, utcnow()
    if decision == "confirm" and candidate.kind == "request_child":
        link(candidate.request_id, candidate.child_id, by, override_reason=override_reason)  # consent-gated
    db.session.flush()
