"""Name search without decrypting the database: a keyed blind index (issue 8, finding 10).

Names, aliases and villages are sealed with a fresh nonce (models.crypto), so SQL cannot compare them.
Each is cut into words, each word normalised for the spelling variants of Luo/Acholi names, and the
table ``child_search_token`` keeps HMAC-SHA256(search key, word) truncated to 16 bytes. A search
normalises the words typed the same way and looks their digests up in the index. The search key is
not the data key: one leaking does not give the other. What the index still reveals is written in
docs/architecture.md ("Name search").

Tokens are written by the one write step, models.change_set: the children whose searched fields a unit
of work created or changed get their tokens rewritten with one DELETE and one INSERT of many rows.
Nothing here is queried per row.
"""

import base64
import functools
import hashlib
import hmac
import re
import unicodedata
import uuid

from sqlalchemy import ForeignKey, Index, String, and_, delete, false, func, insert, or_
from sqlalchemy.orm import Mapped, mapped_column

from models.base import db
from models.children import CASE_CODE_ALPHABET, Child

# The child's fields a search looks in: names, aliases and the village.
SEARCHED_FIELDS = ("given_name", "family_name", "other_names", "village")
DIGEST_BYTES = 16  # 128 bits: collisions between different words are out of reach
MIN_CODE_FRAGMENT = 4  # fewer characters of a case code would match thousands of children
VOWELS = set("aeiou")

_key: bytes | None = None


class SearchKeyError(ValueError):
    pass


class ChildSearchToken(db.Model):
    """One normalised word of a child's name, alias or village, as a keyed digest (never the word)."""

    __tablename__ = "child_search_token"

    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), primary_key=True)
    token: Mapped[str] = mapped_column(String(2 * DIGEST_BYTES), primary_key=True)

    # A search finds the children of a digest from this index alone.
    __table_args__ = (Index("ix_child_search_token_token", "token", "child_id"),)


def configure(key: str) -> None:
    """Install the search key (urlsafe base64 of 32 bytes, like the data key) for this process."""
    global _key
    try:
        raw = base64.urlsafe_b64decode(key.encode())
    except (ValueError, AttributeError):
        raw = b""
    if len(raw) != 32:
        raise SearchKeyError("HOMECOMING_SEARCH_KEY must be 32 random bytes in urlsafe base64 (44 characters)")
    _key = raw
    _part_digest.cache_clear()


def normalise_word(word: str) -> str:
    """One word as the index keeps it, so spelling variants meet.

    Lower case without accents (Ókéllo = okello); ``ch`` written ``c`` (Ochen = Ocen); doubled letters
    single (Okello = Okelo, Oola = Ola); and the Acholi O-/A- prefix that marks a boy's or a girl's form
    of one name (Okello/Akello, Ocen/Acen, Opiyo/Apiyo) dropped when a consonant follows and three
    letters remain, so Okello, Akello and Kello are one word.
    """
    text = unicodedata.normalize("NFKD", word)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = "".join(ch for ch in text if ch.isalnum())
    text = text.replace("ch", "c")
    text = re.sub(r"(.)\1+", r"\1", text)
    if len(text) >= 4 and text[0] in "oa" and text[1].isalpha() and text[1] not in VOWELS:
        text = text[1:]
    return text


APOSTROPHES = re.compile(r"['’`]")
SEPARATORS = re.compile(r"[\W_]+")


def parts_of(text: str | None) -> list[str]:
    """The words of a text as typed: an apostrophe belongs to the word (Ong'wen); spaces, hyphens,
    commas and the rest separate."""
    return SEPARATORS.split(APOSTROPHES.sub("", text)) if text else []


def words_of(text: str | None) -> set[str]:
    """The normalised words of a name, alias list or village; words of one letter are left out."""
    return {w for w in map(normalise_word, parts_of(text)) if len(w) >= 2}


def digest(word: str) -> str:
    if _key is None:
        raise SearchKeyError("no search key configured: create the app (or call models.search.configure) first")
    return hmac.new(_key, word.encode(), hashlib.sha256).digest()[:DIGEST_BYTES].hex()


@functools.lru_cache(maxsize=1 << 16)
def _part_digest(part: str) -> str | None:
    """A typed word's digest, or None for a word the index leaves out. Names repeat a lot (a sync batch,
    a day's registrations), and normalising and keying a word is most of a token's cost. The memo holds
    names in this process's memory, which holds the keys that open every record anyway; it is emptied
    when the search key changes."""
    word = normalise_word(part)
    return digest(word) if len(word) >= 2 else None


def tokens_of(values: dict) -> set[str]:
    """The digests a child's searched fields give."""
    found = {_part_digest(part) for name in SEARCHED_FIELDS for part in parts_of(values.get(name))}
    found.discard(None)
    return found


def token_rows(children: dict) -> list[dict]:
    """Rows of ``child_search_token`` for ``{child_id: {field: value}}``."""
    return [{"child_id": child_id, "token": token}
            for child_id, values in children.items() for token in sorted(tokens_of(values))]


def delete_tokens(child_ids) -> None:
    """Forget the tokens of these children (retention erases a closed case's names). Flushes nothing."""
    child_ids = list(child_ids)
    if child_ids:
        db.session.connection().execute(delete(ChildSearchToken).where(ChildSearchToken.child_id.in_(child_ids)))


def insert_tokens(children: dict, connection=None) -> None:
    """Insert the tokens of children that have none yet, with one executemany."""
    rows = token_rows(children)
    if rows:
        (connection or db.session.connection()).execute(insert(ChildSearchToken.__table__), rows)


def reindex_page(after_id=None, size: int = 500):
    """Rewrite the tokens of the next ``size`` children by id after ``after_id`` (None: from the start);
    returns the last id done, or None when there were none. For a new search key or a database filled
    before the index existed; idempotent, so a run killed half-way is simply run again. Flushes nothing."""
    stmt = db.select(Child.id, *(getattr(Child, name) for name in SEARCHED_FIELDS)).order_by(Child.id).limit(size)
    if after_id is not None:
        stmt = stmt.where(Child.id > after_id)
    rows = db.session.execute(stmt).all()
    if not rows:
        return None
    children = {row[0]: dict(zip(SEARCHED_FIELDS, row[1:], strict=True)) for row in rows}
    delete_tokens(children)
    insert_tokens(children)
    return rows[-1][0]


def case_code_fragment(text: str) -> str | None:
    """The case code characters typed (dash, spaces and case ignored), if there are enough of them."""
    compact = "".join(ch for ch in text.upper() if ch.isalnum())
    if MIN_CODE_FRAGMENT <= len(compact) <= 8 and set(compact) <= set(CASE_CODE_ALPHABET):
        return compact
    return None


def search_condition(text: str):
    """A SQL condition on ``Child`` for a search box: every word typed matches a word of the child's
    names, aliases or village, or the text is 4 or more consecutive characters of the case code.

    The caller adds the user's scope (models.access.child_scope): a search never widens it.
    """
    options = []
    fragment = case_code_fragment(text)
    if fragment is not None:
        if len(fragment) == 8:  # a whole code: the unique index
            options.append(Child.case_code == f"{fragment[:4]}-{fragment[4:]}")
        else:
            options.append(func.replace(Child.case_code, "-", "").contains(fragment))
    words = words_of(text)
    if words:
        options.append(and_(*(
            Child.id.in_(db.select(ChildSearchToken.child_id).where(ChildSearchToken.token == digest(w)))
            for w in sorted(words)
        )))
    return or_(*options) if options else false()
