"""Keyword text for SQLite FTS5 (https://www.sqlite.org/fts5.html): the MATCH expression built
from what a user typed, the Unicode form indexed text and queries share, and bm25() weights.

The schema that indexes the text (the ``items_fts`` external content table, its ``unicode61
remove_diacritics 2`` tokenizer and triggers) is meta.py's; this module is pure, no SQLite.
"""

from __future__ import annotations

import re
import unicodedata

# FTS5 column weights for bm25(): caption, context, book title. A caption names the picture;
# context is the page text around it, so it matches far more by chance.
BM25_WEIGHTS = (4.0, 1.0, 2.0)
MAX_QUERY_TERMS = 32

# A term is a run of letters/digits, optionally ending in * for a prefix query.
_TERM = re.compile(r"\w+\*?")


def fts_query(text: str) -> str | None:
    """A safe FTS5 MATCH expression for what a user typed, or None when it has no words.

    Every term is quoted, so FTS5 syntax in user input (quotes, AND/OR/NOT, NEAR, column
    filters, parentheses) is searched as words instead of raising a syntax error. Terms are
    AND-ed, as in most search boxes; ``word*`` keeps its meaning of a prefix search.
    """
    terms = _TERM.findall(nfc(text))[:MAX_QUERY_TERMS]
    parts = []
    for term in terms:
        prefix = term.endswith("*")
        word = term.rstrip("*").replace("_", " ").strip()
        if word:
            parts.append(f'"{word}"' + ("*" if prefix else ""))
    return " ".join(parts) or None


def nfc(text: str) -> str:
    """Text in the one Unicode form indexed columns and queries share, so "é" matches "é"
    whether it was typed or stored as one code point or two."""
    return unicodedata.normalize("NFC", text or "")
