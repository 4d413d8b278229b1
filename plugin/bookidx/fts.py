"""Keyword text for SQLite FTS5 (https://www.sqlite.org/fts5.html): the MATCH expression built
from what a user typed, the form indexed text and queries share (:func:`searchable`), and bm25()
weights.

German printing wrote the umlaut as a small e above the vowel until the 19th century, and
transcriptions that keep it (Deutsches Textarchiv, OCR-D ground truth: Kant 1784
"Aufkla\u0364rung") write a/o/u + U+0364 COMBINING LATIN SMALL LETTER E, which no reader types and
at which the tokenizer splits words ("aufkla" + "rung"); both sides fold it to ä/ö/ü. The long s
needs nothing here: unicode61 folds "ſ" to "s" itself. Captions keep the source's spelling: only
the searched columns are folded.

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
_SUPERSCRIPT_E = re.compile("([aouAOU])\u0364")  # U+0364 COMBINING LATIN SMALL LETTER E
_UMLAUT = {"a": "ä", "o": "ö", "u": "ü", "A": "Ä", "O": "Ö", "U": "Ü"}


def fts_query(text: str) -> str | None:
    """A safe FTS5 MATCH expression for what a user typed, or None when it has no words.

    Every term is quoted, so FTS5 syntax in user input (quotes, AND/OR/NOT, NEAR, column
    filters, parentheses) is searched as words instead of raising a syntax error. Terms are
    AND-ed, as in most search boxes; ``word*`` keeps its meaning of a prefix search.
    """
    terms = _TERM.findall(searchable(text))[:MAX_QUERY_TERMS]
    parts = []
    for term in terms:
        prefix = term.endswith("*")
        word = term.rstrip("*").replace("_", " ").strip()
        if word:
            parts.append(f'"{word}"' + ("*" if prefix else ""))
    return " ".join(parts) or None


def searchable(text: str) -> str:
    """Text in the one form indexed columns and queries share: NFC, so "é" matches "é" whether
    it was typed or stored as one code point or two, with the older umlaut folded (see above)."""
    text = unicodedata.normalize("NFC", text or "")
    return _SUPERSCRIPT_E.sub(lambda m: _UMLAUT[m.group(1)], text) if "\u0364" in text else text
