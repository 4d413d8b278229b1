"""IIIF Content Search responses for searches within one manifest: pure builders, hits in, JSON out.

Implements
* Content Search 2.0 (https://iiif.io/api/search/2.0/) §4.1 parameters (``q`` and
  ``motivation`` implemented, ``date`` and ``user`` reported in ``ignored``), §4.2 responses:
  an ``AnnotationPage`` (``@context`` http://iiif.io/api/search/2/context.json), paged within an
  embedded ``AnnotationCollection`` (``partOf`` with ``first``/``last``/``total``,
  ``next``/``prev``, ``startIndex``), §4.3 extended responses: one ``annotations`` page of
  ``highlighting`` annotations (a ``TextQuoteSelector`` on the caption a keyword matched) and
  ``contextualizing`` ones (the match in the surrounding page text);
* Content Search 1.0 (https://iiif.io/api/search/1.0/) §3.3 ``sc:AnnotationList`` with
  ``resources`` (``on`` the canvas), paged within an ``sc:Layer`` (``within``), and §3.4 the
  ``hits`` list of ``search:Hit`` with ``match``/``before``/``after`` that Mirador and the
  Universal Viewer show as result snippets.

The matching annotations are the very annotations of the manifest's annotation pages
(annotate.py), with the same ids. A hit found by the image model rather than by a keyword
(text → image) has no matched text: in 2.0 it gets no extended annotation; in 1.0 its
``search:Hit`` carries the annotation's own text (caption, else kind) as ``match``, since
viewers list 1.0 results by their hits and would otherwise drop it or show a bare dash.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from .adapters.records import Region
from .annotate import PRESENTATION2, SEARCH1_CONTEXT, Canvas, Links, annotation_v2, annotation_v3

SEARCH2_CONTEXT = "http://iiif.io/api/search/2/context.json"
SEARCH1_CONTEXTS = [PRESENTATION2, SEARCH1_CONTEXT]
#: Parameters the specifications define (2.0 §4.1.1, 1.0 §3.2.1), and those bookidx implements.
DEFINED_PARAMETERS = ("q", "motivation", "date", "user")
IMPLEMENTED_PARAMETERS = ("q", "motivation")
SNIPPET_CHARS = 60  # text kept on each side of a match


@dataclass(frozen=True)
class Quote:
    """A match in a text: ``exact`` with the text just before (``prefix``) and after (``suffix``)."""

    prefix: str
    exact: str
    suffix: str


@dataclass(frozen=True)
class Result:
    """One search result: the region, its class (if the index has one), and why it matched."""

    region: Region
    cls: str | None = None
    caption_match: Quote | None = None  # a query term in the caption: highlighting
    context_match: Quote | None = None  # only in the surrounding text: contextualizing

    @property
    def motivation(self) -> str:
        """The W3C motivation of the region's annotation (as annotate.py gives it)."""
        return "commenting" if self.region.caption else "tagging"


@dataclass(frozen=True)
class ResultPage:
    """Where one page of results sits in the whole result set.

    ``collection`` is the URL of the whole result set (the search without ``page``); None when
    everything fits on one page, which makes the response a simple list.
    """

    id: str
    start_index: int = 0
    total: int | None = None
    collection: str | None = None
    first: str | None = None
    last: str | None = None
    next: str | None = None
    prev: str | None = None
    ignored: tuple[str, ...] = ()


def query_terms(q: str) -> list[str]:
    """The words of a query, case- and accent-folded, without repeats."""
    out: list[str] = []
    for word in re.findall(r"\w+", _fold(q)[0]):
        if word not in out:
            out.append(word)
    return out


def find_match(text: str, terms: Sequence[str], chars: int = SNIPPET_CHARS) -> Quote | None:
    """The first word of ``text`` that starts with a query term, as a quote with its context.

    Matching ignores case and accents and accepts longer words ("bird" finds "Birds"), as the
    keyword index does; the quote is the original text.
    """
    if not text or not terms:
        return None
    folded, positions = _fold(text)
    found = re.search(r"(?<!\w)(?:" + "|".join(re.escape(t) for t in terms) + r")\w*", folded)
    if found is None:
        return None
    start, end = positions[found.start()], positions[found.end() - 1] + 1
    prefix, suffix = text[max(0, start - chars):start], text[end:end + chars]
    if start > chars and " " in prefix:  # start the snippet on a word
        prefix = prefix[prefix.index(" ") + 1:]
    if end + chars < len(text) and " " in suffix:
        suffix = suffix[: suffix.rindex(" ")]
    return Quote(prefix, text[start:end], suffix)


def result(region: Region, terms: Sequence[str], cls: str | None = None) -> Result:
    """A result with its caption or context match (none for a text → image hit)."""
    caption = find_match(region.caption, terms)
    context = None if caption else find_match(region.context, terms)
    return Result(region, cls, caption, context)


def ignored_parameters(args: Mapping[str, Any]) -> tuple[str, ...]:
    """The specification's parameters present in a request that bookidx does not implement."""
    return tuple(p for p in DEFINED_PARAMETERS if p not in IMPLEMENTED_PARAMETERS and args.get(p))


def motivations(value: str | None) -> frozenset[str] | None:
    """The ``motivation`` parameter as a set of bare motivations (``oa:tagging`` → ``tagging``)."""
    if not value or not value.strip():
        return None
    return frozenset(m.rsplit(":", 1)[-1] for m in value.split())


def search_v2(results: Sequence[Result], canvases: Mapping[str, Canvas], links: Links, page: ResultPage) -> dict[str, Any]:
    """A Content Search 2.0 response: one AnnotationPage of results (§4.2, §4.3)."""
    out: dict[str, Any] = {"@context": SEARCH2_CONTEXT, "id": page.id, "type": "AnnotationPage"}
    if page.collection is not None:
        collection: dict[str, Any] = {"id": page.collection, "type": "AnnotationCollection"}
        if page.total is not None:
            collection["total"] = page.total
        collection["first"] = {"id": page.first or page.id, "type": "AnnotationPage"}
        if page.last:
            collection["last"] = {"id": page.last, "type": "AnnotationPage"}
        out["partOf"] = collection
        if page.next:
            out["next"] = {"id": page.next, "type": "AnnotationPage"}
        if page.prev:
            out["prev"] = {"id": page.prev, "type": "AnnotationPage"}
        out["startIndex"] = page.start_index
    if page.ignored:
        out["ignored"] = list(page.ignored)
    items, extended = [], []
    for res, anno in _annotated(results, canvases, links, annotation_v3):
        items.append(anno)
        quote, motivation = (res.caption_match, "highlighting") if res.caption_match else (res.context_match, "contextualizing")
        if quote is not None:
            extended.append({
                "id": f"{anno['id']}/{motivation}",
                "type": "Annotation",
                "motivation": motivation,
                "target": {
                    "type": "SpecificResource",
                    "source": anno["id"],
                    "selector": [_text_quote_selector(quote)],
                },
            })
    out["items"] = items
    if extended:
        out["annotations"] = [{"id": f"{page.id}#matches", "type": "AnnotationPage", "items": extended}]
    return out


def search_v1(results: Sequence[Result], canvases: Mapping[str, Canvas], links: Links, page: ResultPage) -> dict[str, Any]:
    """A Content Search 1.0 response: an ``sc:AnnotationList`` with ``hits`` (§3.3, §3.4)."""
    out: dict[str, Any] = {"@context": list(SEARCH1_CONTEXTS), "@id": page.id, "@type": "sc:AnnotationList"}
    if page.collection is not None or page.ignored or page.total is not None:
        layer: dict[str, Any] = {"@type": "sc:Layer"}
        if page.total is not None:
            layer["total"] = page.total
        if page.collection is not None:
            layer["first"] = page.first or page.id
            if page.last:
                layer["last"] = page.last
        if page.ignored:
            layer["ignored"] = list(page.ignored)
        out["within"] = layer
    if page.next:
        out["next"] = page.next
    if page.prev:
        out["prev"] = page.prev
    if page.collection is not None:
        out["startIndex"] = page.start_index
    resources, hits = [], []
    for res, anno in _annotated(results, canvases, links, annotation_v2):
        resources.append(anno)
        hit: dict[str, Any] = {"@type": "search:Hit", "annotations": [anno["@id"]]}
        quote = res.caption_match or res.context_match
        if quote is not None:
            hit.update(match=quote.exact, before=quote.prefix, after=quote.suffix)
        else:
            hit["match"] = res.region.caption or res.region.kind
        hits.append(hit)
    out["resources"] = resources
    out["hits"] = hits
    return out


def _annotated(results: Sequence[Result], canvases: Mapping[str, Canvas], links: Links,
               annotation: Callable[..., dict[str, Any] | None]) -> Iterator[tuple[Result, dict[str, Any]]]:
    """Each result with its annotation, built by ``annotation`` (annotation_v3 or annotation_v2)
    exactly as the manifest's annotation pages have it; results off the manifest's canvases, or
    outside their canvas, are left out."""
    for res in results:
        canvas = canvases.get(res.region.page.id)
        anno = None if canvas is None else annotation(res.region, canvas, links, (res.cls,) if res.cls else ())
        if anno is not None:
            yield res, anno


def _text_quote_selector(quote: Quote) -> dict[str, str]:
    selector = {"type": "TextQuoteSelector"}
    if quote.prefix:
        selector["prefix"] = quote.prefix
    selector["exact"] = quote.exact
    if quote.suffix:
        selector["suffix"] = quote.suffix
    return selector


def _fold(text: str) -> tuple[str, list[int]]:
    """Lower-case, accent-free ``text`` and, per folded character, its index in ``text``.

    SQLite FTS5's unicode61 tokenizer folds case and removes diacritics, so "etude" finds
    "Étude"; the positions map a match in the folded text back to the original characters.
    """
    chars: list[str] = []
    positions: list[int] = []
    for i, ch in enumerate(text):
        for f in unicodedata.normalize("NFKD", ch.lower()):
            if not unicodedata.combining(f):
                chars.append(f)
                positions.append(i)
    return "".join(chars), positions
