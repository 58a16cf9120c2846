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

from models.base import UTCDateTime, db, upsert_insert, utcnow
from models.children import Child
from models.search import digest, words_of
from models.tracing import TracingRequest

CHILD, REQUEST = "c", "r"
KINDS = {"request_child": "tracing request ↔ child", "child_child": "possible duplicate registration"}
STATUSES = ("pending", "confirmed", "dismissed")
DEFAULT_THRESHOLD = 0.72
# At most this many best-blocked candidates are scored for one record.
MAX_CANDIDATES = 200
# A key held by more records than this is too common to pair records on in the sweep by itself.
MAX_BLOCK = 300

# Names given for the circumstances of birth, normalised (models.search.normalise_word): Opio/Apio and
# Ocen/Acen (twins), Okello/Akello (after twins), Ocan/Acan (in hardship), Odoc/Adoc (feet first).
# Many children share them, so they are compared apart from the other names. A programme extends it.
BIRTH_NAMES = frozenset({"pio", "piyo", "cen", "kelo", "can", "doc"})
# Acholi clan (chiefdom) names a child may give as a name; compared apart, like birth names.
CLAN_NAMES = frozenset({"payira", "pajule", "patiko", "puranga", "pabo", "atiak", "lamogi", "pader",
                        "koc", "alero", "parabongo", "paimol", "lira", "palaro", "pawel"})
WEIGHTS = {"names": 0.42, "birth_names": 0.05, "clan": 0.04, "sex": 0.12, "age": 0.12, "origin": 0.15,
           "separation": 0.04, "armed_group": 0.06}
NEUTRAL = 0.5  # a signal one side does not know: neither for nor against
NAME_FIELDS = ("given_name", "family_name", "other_names")
COMPARED = (*NAME_FIELDS, "sex", "birth_year", "district", "sub_county", "parish", "village", "armed_group")
CHILD_EXTRA = ("date_joined", "exit_place", "stage", "deleted_at")
REQUEST_EXTRA = ("separation_date", "separation_place", "status")


class MatchToken(db.Model):
    """A keyed digest of one name key (or pair of keys) of a child or a request: never the name."""

    __tablename__ = "match_token"

    owner: Mapped[str] = mapped_column(String(1), primary_key=True)  # c: child, r: tracing request
    record_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), primary_key=True)

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


def name_words(values: dict) -> set[str]:
    """The normalised words of a record's names and aliases; written-apart names also joined
    ("La Kwena" gives la, kwena and lakwena)."""
    words = set()
    for name in NAME_FIELDS:
        text = values.get(name)
        words |= words_of(text)
        if text and " " in text.strip():
            words |= words_of(text.replace(" ", ""))
    return words


def keys_of(values: dict) -> set[str]:
    """The plaintext blocking keys of a record: each word's key, and each unordered pair of keys."""
    keys = sorted({name_key(w) for w in name_words(values)})
    pairs = {f"{a}|{b}" for i, a in enumerate(keys) for b in keys[i + 1:]}
    return {*(f"k:{k}" for k in keys), *(f"p:{p}" for p in pairs)}


def tokens_of(values: dict) -> set[str]:
    return {digest(f"match:{key}") for key in keys_of(values)}


# --- the index -------------------------------------------------------------------------------------


def _columns(owner: str):
    model = Child if owner == CHILD else TracingRequest
    extra = CHILD_EXTRA if owner == CHILD else REQUEST_EXTRA
    return model, [model.id, model.version, *(getattr(model, name) for name in (*COMPARED, *extra))]


def read_records(owner: str, ids) -> dict:
    """``{id: {field: value}}`` for these records, decrypted (in memory only), in chunks of ids."""
    model, columns = _columns(owner)
    names = ["id", "version", *COMPARED, *(CHILD_EXTRA if owner == CHILD else REQUEST_EXTRA)]
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
    rows = [{"owner": owner, "record_id": i, "token": t} for i, v in live.items() for t in sorted(tokens_of(v))]
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


def _split(values: dict) -> tuple[set, set, set]:
    words = name_words(values)
    return words - BIRTH_NAMES - CLAN_NAMES, words & BIRTH_NAMES, words & CLAN_NAMES


def _similar(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if name_key(a) == name_key(b):
        return 0.95
    return fuzz.ratio(a, b) / 100


def names_score(words_a: set, words_b: set) -> float | None:
    """Each word of the shorter side paired with its most similar word of the other, averaged."""
    if not words_a or not words_b:
        return None
    short, long_ = (words_a, words_b) if len(words_a) <= len(words_b) else (words_b, words_a)
    return sum(max(_similar(a, b) for b in long_) for a in short) / len(short)


def _set_signal(a: set, b: set) -> float:
    if not a or not b:
        return NEUTRAL
    return 1.0 if a & b else 0.0


def _text_words(text) -> set[str]:
    return words_of(text) if text else set()


def _place_similarity(a, b) -> float | None:
    wa, wb = _text_words(a), _text_words(b)
    return names_score(wa, wb)


def origin_score(a: dict, b: dict) -> float:
    parts = []
    if a.get("district") and b.get("district"):
        parts.append((0.4, 1.0 if a["district"] == b["district"] else 0.0))
    for name in ("sub_county", "parish", "village"):
        similar = _place_similarity(a.get(name), b.get(name))
        if similar is not None:
            parts.append((0.2, similar))
    if not parts:
        return NEUTRAL
    return sum(w * s for w, s in parts) / sum(w for w, _ in parts)


def age_score(a, b) -> float:
    if a is None or b is None:
        return NEUTRAL
    return {0: 1.0, 1: 0.85, 2: 0.6, 3: 0.3}.get(abs(a - b), 0.0)


def _separation(values: dict) -> tuple:
    """(date, place) a child was separated: a request's own, a child's recruitment date and exit place."""
    if "separation_date" in values:
        return values.get("separation_date"), values.get("separation_place")
    return values.get("date_joined"), values.get("exit_place")


def separation_score(a: dict, b: dict) -> float:
    (date_a, place_a), (date_b, place_b) = _separation(a), _separation(b)
    parts = []
    if isinstance(date_a, date) and isinstance(date_b, date):
        months = abs((date_a - date_b).days) / 30.4
        parts.append(1.0 if months <= 3 else 0.6 if months <= 12 else 0.0)
    place = _place_similarity(place_a, place_b)
    if place is not None:
        parts.append(place)
    return sum(parts) / len(parts) if parts else NEUTRAL


def score_pair(a: dict, b: dict) -> Scored:
    """How likely two records (a request's sought child or a child, and a child) are one child."""
    names_a, birth_a, clan_a = _split(a)
    names_b, birth_b, clan_b = _split(b)
    names = names_score(names_a, names_b)
    if names is None:  # only birth or clan names on one side: they stand in, weakly
        names = 0.6 * _set_signal(names_a | birth_a | clan_a, names_b | birth_b | clan_b)
    known_sex = {a.get("sex"), b.get("sex")} <= {"female", "male"}
    group_a, group_b = _text_words(a.get("armed_group")), _text_words(b.get("armed_group"))
    signals = {
        "names": names,
        "birth_names": _set_signal(birth_a, birth_b),
        "clan": _set_signal(clan_a, clan_b),
        "sex": (1.0 if a.get("sex") == b.get("sex") else 0.0) if known_sex else NEUTRAL,
        "age": age_score(a.get("birth_year"), b.get("birth_year")),
        "origin": origin_score(a, b),
        "separation": separation_score(a, b),
        "armed_group": _set_signal(group_a, group_b),
    }
    total = sum(WEIGHTS[k] * v for k, v in signals.items())
    return Scored(round(total, 4), {k: round(v, 3) for k, v in signals.items()})


# --- candidates ------------------------------------------------------------------------------------


def pair_key(kind: str, left, right) -> str:
    if kind == "child_child":
        left, right = sorted((left, right), key=str)
    return f"{kind[0]}:{left}:{right}"


def blocked_pairs(left_owner: str) -> list[tuple]:
    """The sweep's pairs (left record, child) sharing a pair of name keys, or two keys each rare
    enough to block on: one grouped self-join over the token index."""
    left = MatchToken.__table__.alias("left_")
    right = MatchToken.__table__.alias("right_")
    common = (select(MatchToken.token).group_by(MatchToken.token).having(func.count() > MAX_BLOCK))
    stmt = (select(left.c.record_id, right.c.record_id).select_from(left)
            .join(right, (right.c.token == left.c.token) & (right.c.owner == CHILD))
            .where(left.c.owner == left_owner, left.c.token.not_in(common))
            .group_by(left.c.record_id, right.c.record_id).having(func.count() >= 2))
    if left_owner == CHILD:
        stmt = stmt.where(left.c.record_id < right.c.record_id)
    return db.session.execute(stmt).all()


def _decided_keys(keys) -> set[str]:
    keys, out = list(keys), set()
    for start in range(0, len(keys), 900):
        out |= set(db.session.execute(select(MatchCandidate.pair_key).where(
            MatchCandidate.pair_key.in_(keys[start:start + 900]), MatchCandidate.status != "pending")).scalars())
    return out


def score_pairs(pairs, left_owner: str, threshold: float) -> list[dict]:
    """Rows of ``match_candidate`` for the pairs scoring at or above ``threshold``."""
    pairs = [(a, b) for a, b in pairs if a != b]
    if not pairs:
        return []
    kind = "child_child" if left_owner == CHILD else "request_child"
    lefts = read_records(left_owner, {a for a, _ in pairs})
    children = lefts if left_owner == CHILD else {}
    children.update(read_records(CHILD, {b for _, b in pairs} - set(children)))
    rows = []
    for a, b in pairs:
        left_values, child_values = lefts.get(a), children.get(b)
        if left_values is None or child_values is None:
            continue
        if not (is_live(left_owner, left_values) and is_live(CHILD, child_values)):
            continue
        scored = score_pair(left_values, child_values)
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
    """Re-index these records and return their values (for matching them next)."""
    records = read_records(owner, ids)
    reindex(owner, records)
    return records


def match_records(*, child_ids=(), request_ids=(), threshold: float = DEFAULT_THRESHOLD) -> int:
    """After a commit that created or changed these records: re-index them and queue their candidates
    (requests against children, children against children). Flushes, never commits."""
    found = 0
    for owner, ids in ((CHILD, child_ids), (REQUEST, request_ids)):
        ids = list(ids)
        if not ids:
            continue
        refresh(owner, ids)
        pairs = [(i, c) for i in ids for c in blocked_records(CHILD, owner, i)]
        if owner == CHILD:  # a child is also a candidate for the requests that block on it
            found += save_candidates(score_pairs(_requests_for(ids), REQUEST, threshold))
        found += save_candidates(score_pairs(pairs, owner, threshold))
    return found


def _requests_for(child_ids) -> list[tuple]:
    return [(r, c) for c in child_ids for r in blocked_records(REQUEST, CHILD, c)]


def blocked_records(owner: str, of_owner: str, record_id, limit: int = MAX_CANDIDATES) -> list:
    """Records of ``owner`` sharing the most tokens with one record of ``of_owner`` (itself left out):
    one grouped join on the token index."""
    mine = MatchToken.__table__.alias("mine")
    theirs = MatchToken.__table__.alias("theirs")
    return db.session.execute(
        select(theirs.c.record_id).select_from(mine)
        .join(theirs, (theirs.c.token == mine.c.token) & (theirs.c.owner == owner))
        .where(mine.c.owner == of_owner, mine.c.record_id == record_id, theirs.c.record_id != record_id)
        .group_by(theirs.c.record_id).order_by(func.count().desc(), theirs.c.record_id).limit(limit)
    ).scalars().all()


@dataclass
class SweepResult:
    reindexed: int
    pairs: int
    queued: int


def sweep(threshold: float = DEFAULT_THRESHOLD) -> SweepResult:
    """The scheduled sweep: re-index what changed since its tokens were made, then block and score every
    request against the children and the children against each other. Flushes, never commits."""
    reindexed = 0
    for owner in (CHILD, REQUEST):
        stale = stale_ids(owner)
        for start in range(0, len(stale), 2000):
            reindexed += len(refresh(owner, stale[start:start + 2000]))
    queued = pairs = 0
    for owner in (REQUEST, CHILD):
        blocked = blocked_pairs(owner)
        pairs += len(blocked)
        for start in range(0, len(blocked), 20000):
            queued += save_candidates(score_pairs(blocked[start:start + 20000], owner, threshold))
    return SweepResult(reindexed, pairs, queued)


# --- the review queue ------------------------------------------------------------------------------


def decide(candidate: MatchCandidate, decision: str, by) -> None:
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
        link(candidate.request_id, candidate.child_id, by)
    db.session.flush()
