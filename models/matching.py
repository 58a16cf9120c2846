"""Matching (issue 14): tracing requests against children, and children against children (possible
duplicate registrations), into a review queue a manager decides. Plain functions; docs/tracing.md.

Blocking: each record's names and aliases are cut into words by the name search's normaliser
(models.search.words_of: O-/A- prefix, ch/c, doubled letters, accents, apostrophes); each word gives a
short *key* (its final vowels, and a y before them, dropped: Atim/Atimo, Okello/Okelo, Opiyo/Opiy), and
``match_token`` keeps HMAC digests, under the search key, of every key (k), of every unordered pair of keys
(p) and, for a single-named record, of its key as such (s). The database so holds no searchable
plaintext, only which records share a key. A pair is blocked when one record looks up a digest the other
holds and their clear sex, district and birth year agree (``agree``); only blocked records are read,
decrypted in memory and scored. A full sweep reads every record once and blocks in memory by the same
rule; an incremental one, and matching one record on the spot, look the changed records' digests up in
the index, in one query per chunk.

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

from models.base import UTCDateTime, db, upsert_insert, utcnow
from models.children import Child
from models.search import digest, words_of
from models.tracing import TracingRequest

CHILD, REQUEST = "c", "r"
KINDS = {"request_child": "tracing request ↔ child", "child_child": "possible duplicate registration"}
STATUSES = ("pending", "confirmed", "dismissed")
DEFAULT_THRESHOLD = 0.85
# At most this many best-blocked candidates are scored for one record matched on the spot.
MAX_CANDIDATES = 50
# A digest held by more records of one kind than this is too common to tell anyone apart: the sweep skips it.
MAX_BLOCK = 1000
# Birth years further apart than this are not blocked together (the age signal is 0 beyond 3).
MAX_YEAR_GAP = 3  # len(AGE) - 1
KNOWN_SEXES = ("female", "male")
# A sweep with more changed records than this share of all reads everything once and blocks in memory.
FULL_SHARE = 0.2

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
    """A normalised word's blocking key: without its final vowels, and a y before them (Atim/Atimo,
    Okelo/Okello, Opiyo/Opiy, Oloya/Oloy), as far as two letters remain; else the word itself."""
    vowels = word.rstrip("aeiou")
    for stripped in (vowels.rstrip("y"), vowels):
        if len(stripped) >= 2:
            return stripped
    return word


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
    """The plaintext blocking keys of a record, as (kind, key): each word's key (k) and each unordered pair
    of keys (p); a record with a single key also gives it as ``s`` (single), which the records with more
    names look up to meet it. Sex, district and birth year are clear columns: blocking compares them
    there (``agree``), so no digest carries them."""
    return set(holdings(key_list(values, memo)))


def holdings(keys) -> list[tuple[str, str]]:
    """The (kind, key) a record with these name keys holds in the index."""
    return [*(("k", k) for k in keys), *(("p", p) for p in block_pairs(keys)), *(("s", k) for k in keys if len(keys) == 1)]


def key_list(values: dict, memo: dict | None = None) -> tuple[str, ...]:
    return keys_of_words(name_words(values, memo))


def keys_of_words(words) -> tuple[str, ...]:
    return tuple(sorted({name_key(w) for w in words}))


def block_pairs(keys) -> list[str]:
    return [f"{a}|{b}" for i, a in enumerate(keys) for b in keys[i + 1:]]


def tokens_of(values: dict, memo: dict | None = None, digests: dict | None = None) -> dict[str, str]:
    """``{digest: kind}`` of a record's keys: HMAC under the search key, never the key itself. ``digests``:
    a memo of them for one batch (keys repeat a lot)."""
    digests = {} if digests is None else digests
    return {digests.get(k) or digests.setdefault(k, token(*k)): k[0] for k in keys_of(values, memo)}


def token(kind: str, key: str) -> str:
    return digest(f"match:{kind}:{key}")


def lookups(keys, *, sweep: bool) -> list[tuple[str, str]]:
    """What a record with these name keys looks up to find its blocked records: its pairs of keys (p); a
    single-named record, its key among the single-named (s). Matching one record on the spot looks
    further: its keys among the single-named (s), and a single-named record its key among everyone (k);
    the sweep does not, as one name shared with thousands of records tells no one apart."""
    if len(keys) == 1:
        return [("s", keys[0])] if sweep else [("s", keys[0]), ("k", keys[0])]
    pairs = [("p", p) for p in block_pairs(keys)]
    return pairs if sweep else [*pairs, *(("s", k) for k in keys)]


def agree(sex_a, district_a, year_a, sex_b, district_b, year_b) -> bool:
    """Blocking's second half: sex and district equal and birth years at most MAX_YEAR_GAP apart, each
    where both records know it. Further apart the age signal is 0 and a pair reaches the threshold only
    if everything else is perfect."""
    return _places_agree(_sex(sex_a), district_a, _sex(sex_b), district_b) and _years_agree(year_a, year_b)


def _sex(value):
    return value if value in KNOWN_SEXES else None


def _places_agree(sex_a, district_a, sex_b, district_b) -> bool:
    return (not sex_a or not sex_b or sex_a == sex_b) and (not district_a or not district_b or district_a == district_b)


def _years_agree(a, b) -> bool:
    return a is None or b is None or abs(a - b) <= MAX_YEAR_GAP


# --- the index -------------------------------------------------------------------------------------


def read_records(owner: str, ids=None) -> dict:
    """``{id: {field: value}}`` of what scoring compares, decrypted (in memory only), for these records in
    chunks of ids, or (``ids`` None) for every record in one query."""
    model = Child if owner == CHILD else TracingRequest
    names = ["id", "version", LIVE[owner], *COMPARED, *SEPARATION[owner]]
    columns = [getattr(model, name) for name in names]
    if ids is None:
        return {row[0]: dict(zip(names, row, strict=True)) for row in db.session.execute(select(*columns))}
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
    memo: dict = {}
    digests: dict = {}
    rows = []
    # In primary-key order: the B-tree is then written in order (a third faster than in random order).
    for record_id in sorted((i for i, v in records.items() if is_live(owner, v)), key=lambda i: i.int):
        made = tokens_of(records[record_id], memo, digests)
        rows += [{"owner": owner, "record_id": record_id, "token": t, "kind": made[t]} for t in sorted(made)]
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

    keys: tuple  # the name keys, sorted: what blocking looks up (``lookups``)
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
        keys=keys_of_words(words), names=frozenset(words - BIRTH_NAMES - CLAN_NAMES), birth_names=frozenset(words & BIRTH_NAMES),
        clans=frozenset(words & CLAN_NAMES), sex=values.get("sex"), birth_year=values.get("birth_year"),
        district=values.get("district"), places=tuple(cached_words(values.get(n), memo) for n in ("sub_county", "parish", "village")),
        separation_date=sep_date if isinstance(sep_date, date) else None,
        separation_place=cached_words(sep_place, memo), armed_group=cached_words(values.get("armed_group"), memo))


# Sets of words already compared in the batch being scored: names repeat a lot. ``_candidates`` empties
# it when its batch is done, so no plaintext outlives the batch (threads sharing it only lose entries).
_similar_memo: dict = {}


def _similar(a: str, b: str) -> float:
    """1 for one word, 0.95 for one key (Atim/Atimo), else rapidfuzz's ratio rescaled so that the
    half-similarity of two unrelated names counts for nothing. Not memoised: the ratio costs less than
    a look-up in a large dict."""
    if a == b:
        return 1.0
    if a[:2] == b[:2] and name_key(a) == name_key(b):  # one key: the words begin alike
        return 0.95
    return max(0.0, (fuzz.ratio(a, b) / 100 - 0.5) * 2)


def _best_mean(words_a, words_b) -> float:
    return sum(max(_similar(a, b) for b in words_b) for a in words_a) / len(words_a)


def words_score(words_a: frozenset, words_b: frozenset) -> float | None:
    """Each word paired with its most similar word on the other side (so swapped names still meet),
    mostly from the side with fewer words: a name missing on one side costs a little, not all."""
    if not words_a or not words_b:
        return None
    if len(words_a) == 1 == len(words_b):  # most places
        (a,), (b,) = words_a, words_b
        return _similar(a, b)
    found = _similar_memo.get((words_a, words_b))
    if found is None:
        short, long_ = (words_a, words_b) if len(words_a) <= len(words_b) else (words_b, words_a)
        found = _similar_memo[(words_a, words_b)] = 0.75 * _best_mean(short, long_) + 0.25 * _best_mean(long_, short)
    return found


def _set_signal(a, b) -> float:
    if not a or not b:
        return NEUTRAL
    return 1.0 if a & b else 0.0


def origin_score(a: Profile, b: Profile) -> float:
    """The mean, over the parts both know, of district equal and the word similarity of sub-county,
    parish and village."""
    total = count = 0
    if a.district and b.district:
        total, count = float(a.district == b.district), 1
    for place_a, place_b in zip(a.places, b.places, strict=True):
        if place_a and place_b:
            total += words_score(place_a, place_b)
            count += 1
    return total / count if count else NEUTRAL


AGE = (1.0, 0.85, 0.6, 0.3)  # by years apart; further apart 0


def age_score(a, b) -> float:
    if a is None or b is None:
        return NEUTRAL
    gap = abs(a - b)
    return AGE[gap] if gap < len(AGE) else 0.0


def separation_score(a: Profile, b: Profile) -> float:
    total = count = 0
    if a.separation_date and b.separation_date:
        months = abs((a.separation_date - b.separation_date).days) / 30.4
        total, count = (1.0 if months <= 3 else 0.6 if months <= 12 else 0.0), 1
    if a.separation_place and b.separation_place:
        total += words_score(a.separation_place, b.separation_place)
        count += 1
    return total / count if count else NEUTRAL


def signals_of(a: Profile, b: Profile) -> tuple:
    """The signal scores of a pair, in the order of WEIGHTS."""
    names = words_score(a.names, b.names)
    if names is None:  # only birth or clan names on one side: they stand in, weakly
        names = 0.6 * _set_signal(a.names | a.birth_names | a.clans, b.names | b.birth_names | b.clans)
    known_sex = a.sex in KNOWN_SEXES and b.sex in KNOWN_SEXES
    return (names, _set_signal(a.birth_names, b.birth_names), _set_signal(a.clans, b.clans),
            (1.0 if a.sex == b.sex else 0.0) if known_sex else NEUTRAL, age_score(a.birth_year, b.birth_year),
            origin_score(a, b), separation_score(a, b), _set_signal(a.armed_group, b.armed_group))


_WEIGHTS = tuple(WEIGHTS.values())
_SEX = tuple(WEIGHTS).index("sex")


def total_of(signals: tuple) -> float:
    total = sum(w * v for w, v in zip(_WEIGHTS, signals, strict=True))
    if signals[_SEX] == 0.0:  # a boy and a girl are not one child, whatever their names
        total *= SEX_CONTRADICTION
    return round(total, 4)


def score_profiles(a: Profile, b: Profile) -> Scored:
    signals = signals_of(a, b)
    return Scored(total_of(signals), {k: round(v, 3) for k, v in zip(WEIGHTS, signals, strict=True)})


def score_pair(a: dict, b: dict) -> Scored:
    """How likely two records (a request's sought child or a child, and a child) are one child."""
    return score_profiles(profile(a), profile(b))


# --- candidates ------------------------------------------------------------------------------------


def pair_key(kind: str, left, right) -> str:
    if kind == "child_child":
        left, right = sorted((left, right), key=str)
    return f"{kind[0]}:{left}:{right}"


def _decided_keys(keys) -> set[str]:
    keys, out = list(keys), set()
    for start in range(0, len(keys), 900):
        out |= set(db.session.execute(select(MatchCandidate.pair_key).where(
            MatchCandidate.pair_key.in_(keys[start:start + 900]), MatchCandidate.status != "pending")).scalars())
    return out


def _profiles(owner: str, ids, cache: dict) -> dict:
    """Profiles of these records (None for one no longer matched), read and decrypted once per ``cache``:
    a sweep keeps one cache for all its work, one record's matching one for its call."""
    missing = [i for i in ids if (owner, i) not in cache]
    memo: dict = {}
    for record_id, values in read_records(owner, missing).items():
        cache[(owner, record_id)] = profile(values, memo) if is_live(owner, values) else None
    return {i: cache.get((owner, i)) for i in ids}


def score_pairs(pairs, left_owner: str, threshold: float, cache: dict | None = None) -> list[dict]:
    """Rows of ``match_candidate`` for the pairs (ids) scoring at or above ``threshold``."""
    pairs = [(a, b) for a, b in pairs if a != b]
    if not pairs:
        return []
    cache = {} if cache is None else cache
    lefts = _profiles(left_owner, {a for a, _ in pairs}, cache)
    children = _profiles(CHILD, {b for _, b in pairs}, cache)
    return _candidates(((a, b, lefts[a], children[b]) for a, b in pairs), left_owner, threshold)


def _candidates(items, left_owner: str, threshold: float) -> list[dict]:
    """Rows for ``items`` (left id, child id, their profiles) scoring at or above ``threshold``, less the
    pairs already decided. The signals of a pair are kept only when it is queued."""
    kind = "child_child" if left_owner == CHILD else "request_child"
    rows = []
    try:
        for a, b, left, child in items:
            if left is None or child is None:
                continue
            signals = signals_of(left, child)
            score = total_of(signals)
            if score < threshold:
                continue
            first, second = (sorted((a, b), key=str) if kind == "child_child" else (a, b))
            rows.append({
                "id": uuid.uuid4(), "kind": kind, "pair_key": pair_key(kind, a, b),
                "request_id": first if kind == "request_child" else None,
                "child_id": second if kind == "request_child" else first,
                "other_child_id": second if kind == "child_child" else None, "score": score,
                "signals": {k: round(v, 3) for k, v in zip(WEIGHTS, signals, strict=True)}, "status": "pending",
            })
    finally:
        _similar_memo.clear()
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


# --- blocking ----------------------------------------------------------------------------------------
# A pair is blocked (read, decrypted and scored) when one record looks up a digest the other holds
# (``lookups``: a pair of name keys, or one key with a single-named record) and ``agree`` holds.


def _from_index(owner: str, of: dict, *, prune: bool, limit: int | None) -> list[tuple]:
    """Blocked pairs (record of ``of``, record of ``owner``), ``of`` being ``{id: Profile}`` of records
    already indexed: one lookup of their digests in the token index (chunked for SQLite's limit on
    bound parameters), joined to the clear sex, district and birth year. ``prune``: digests held by more
    than MAX_BLOCK records are too common to tell anyone apart (the sweep's rule); ``limit``: keep only
    each record's ``limit`` holders sharing the most digests (one record's matching)."""
    model = Child if owner == CHILD else TracingRequest
    wanted: dict[str, list] = {}
    for record_id, p in of.items():
        for kind, key in lookups(p.keys, sweep=prune):
            wanted.setdefault(token(kind, key), []).append((record_id, p))
    tokens, holders = list(wanted), {}
    for start in range(0, len(tokens), 900):
        rows = db.session.execute(
            select(MatchToken.token, MatchToken.record_id, model.sex, model.district, model.birth_year)
            .join(model, model.id == MatchToken.record_id)
            .where(MatchToken.owner == owner, MatchToken.token.in_(tokens[start:start + 900]))).all()
        for row in rows:
            holders.setdefault(row[0], []).append(row[1:])
    shared: dict[tuple, int] = {}
    for digest_, held in holders.items():
        if prune and len(held) > MAX_BLOCK:
            continue
        for record_id, p in wanted[digest_]:
            for other, sex, district, year in held:
                if other != record_id and agree(p.sex, p.district, p.birth_year, sex, district, year):
                    shared[(record_id, other)] = shared.get((record_id, other), 0) + 1
    if limit is None:
        return list(shared)
    best: dict = {}
    for pair, count in shared.items():
        best.setdefault(pair[0], []).append((-count, str(pair[1]), pair))
    return [pair for ranked in best.values() for *_, pair in sorted(ranked)[:limit]]


def _in_memory(left: list, children: list, same: bool) -> set[tuple[int, int]]:
    """Blocked pairs (position in ``left``, position in ``children``) of profiles already in memory (the
    full sweep), by the same rule as ``_from_index``: holders bucketed by sex and district, so each lookup
    visits only agreeing buckets. ``same``: children against children, each pair once (smaller first)."""
    held: dict[tuple, dict] = {}
    for at, p in enumerate(children):
        bucket = (_sex(p.sex), p.district or None)
        for kind_key in holdings(p.keys):
            if kind_key[0] == "k":  # the sweep never looks these up
                continue
            held.setdefault(kind_key, {}).setdefault(bucket, []).append((at, p.birth_year))
    sizes = {k: sum(len(b) for b in buckets.values()) for k, buckets in held.items()}
    pairs: set = set()
    add, gap = pairs.add, MAX_YEAR_GAP
    for at, p in enumerate(left):
        sex, year = _sex(p.sex), p.birth_year
        for kind_key in lookups(p.keys, sweep=True):
            buckets = held.get(kind_key)
            if not buckets or sizes[kind_key] > MAX_BLOCK:
                continue
            if sex and p.district:  # the usual case: four buckets agree, looked up directly
                agreeing = [buckets.get(b, ()) for b in ((sex, p.district), (sex, None), (None, p.district), (None, None))]
            else:
                agreeing = [items for (b_sex, b_district), items in buckets.items()
                            if _places_agree(sex, p.district, b_sex, b_district)]
            for items in agreeing:
                for other, other_year in items:  # _years_agree, inlined: the sweep's innermost loop
                    # Look-ups are symmetric: among children, the smaller one's is enough.
                    if (year is None or other_year is None or abs(year - other_year) <= gap) and (not same or at < other):
                        add((at, other))
    return pairs


@dataclass
class SweepResult:
    reindexed: int
    pairs: int
    queued: int


def _queue(changed: dict, threshold: float, cache: dict, pairs: dict) -> SweepResult:
    """Score ``pairs`` (``{left owner: pairs}``) and queue those at or above ``threshold``."""
    queued = 0
    for left_owner, found in pairs.items():
        queued += save_candidates(score_pairs(found, left_owner, threshold, cache))
    return SweepResult(sum(len(v) for v in changed.values()), sum(len(v) for v in pairs.values()), queued)


def _refresh(owner: str, records: dict, cache: dict) -> dict:
    """Re-index these records (``{id: values}``) and keep their profiles in ``cache``: ``{id: Profile}`` of
    those still matched."""
    reindex(owner, records)
    memo: dict = {}
    out = {}
    for record_id, values in records.items():
        p = cache[(owner, record_id)] = profile(values, memo) if is_live(owner, values) else None
        if p is not None:
            out[record_id] = p
    return out


def _match_indexed(changed: dict, threshold: float, cache: dict, *, prune: bool, limit: int | None):
    """Block the changed records (``{owner: {id: Profile}}``, re-indexed) through the token index, score."""
    children, requests = changed.get(CHILD, {}), changed.get(REQUEST, {})
    child_pairs = {tuple(sorted(p, key=str)) for p in _from_index(CHILD, children, prune=prune, limit=limit)}
    request_pairs = {(r, c) for c, r in _from_index(REQUEST, children, prune=prune, limit=limit)}
    request_pairs |= set(_from_index(CHILD, requests, prune=prune, limit=limit))
    return _queue(changed, threshold, cache, {CHILD: child_pairs, REQUEST: request_pairs})


def match_records(*, child_ids=(), request_ids=(), threshold: float = DEFAULT_THRESHOLD) -> int:
    """After a commit that created or changed these records: re-index them and queue their candidates
    (requests against children, children against children): for each, the MAX_CANDIDATES blocked records
    sharing the most digests, common names included. Flushes, never commits."""
    cache: dict = {}
    changed = {owner: _refresh(owner, read_records(owner, list(ids)), cache)
               for owner, ids in ((CHILD, child_ids), (REQUEST, request_ids)) if ids}
    return _match_indexed(changed, threshold, cache, prune=False, limit=MAX_CANDIDATES).queued


def sweep(threshold: float = DEFAULT_THRESHOLD, *, full: bool = False) -> SweepResult:
    """The scheduled sweep: re-index what changed since its tokens were made (children written by sync
    or the CLI, which are not matched on the spot) and score the blocked pairs that involve a changed
    record; ``full`` scores every blocked pair (after lowering the threshold). Few changes go through the
    token index; many (a first build, ``full``) read every record once and block in memory. Set-based
    either way: a query per chunk of records, never per record. Flushes, never commits."""
    stale = {owner: stale_ids(owner) for owner in (CHILD, REQUEST)}
    changed_count = sum(len(ids) for ids in stale.values())
    if not full and not changed_count:
        return SweepResult(0, 0, 0)
    cache: dict = {}
    total = sum(db.session.execute(select(func.count()).select_from(m)).scalar_one() for m in (Child, TracingRequest))
    if not full and changed_count <= FULL_SHARE * total:
        changed = {owner: _refresh(owner, read_records(owner, ids), cache) for owner, ids in stale.items()}
        return _match_indexed(changed, threshold, cache, prune=True, limit=None)
    ids, profiles = {}, {}
    for owner in (CHILD, REQUEST):
        records = read_records(owner)
        _refresh(owner, {i: records[i] for i in stale[owner] if i in records}, cache)
        memo: dict = {}
        for record_id, values in records.items():
            if (owner, record_id) not in cache:
                cache[(owner, record_id)] = profile(values, memo) if is_live(owner, values) else None
        ids[owner] = [i for i in records if cache[(owner, i)] is not None]
        profiles[owner] = [cache[(owner, i)] for i in ids[owner]]
    pairs = {CHILD: _in_memory(profiles[CHILD], profiles[CHILD], same=True),
             REQUEST: _in_memory(profiles[REQUEST], profiles[CHILD], same=False)}
    if not full:
        stale_sets = {o: set(found) for o, found in stale.items()}
        touched = {o: {at for at, i in enumerate(ids[o]) if i in stale_sets[o]} for o in ids}
        pairs = {o: {(a, b) for a, b in found if a in touched[o] or b in touched[CHILD]} for o, found in pairs.items()}
    queued = 0
    for owner, found in pairs.items():
        left_ids, left_profiles = ids[owner], profiles[owner]
        items = ((left_ids[a], ids[CHILD][b], left_profiles[a], profiles[CHILD][b]) for a, b in found)
        queued += save_candidates(_candidates(items, owner, threshold))
    return SweepResult(changed_count, sum(len(found) for found in pairs.values()), queued)


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
