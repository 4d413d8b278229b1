"""One error hierarchy for bookidx, shaped like zimeon/iiif's IIIFError.

Every error carries an HTTP status (``code``), a human ``detail`` and the ``parameter`` (file,
field, query argument) it concerns, so the CLI prints the same words the web API returns as JSON.
Per-item failures during indexing are *not* raised: they are recorded as data (see store.py).
"""

from __future__ import annotations


class BookidxError(Exception):
    """Base class. ``code`` is the HTTP status a web response uses for it."""

    code: int = 500

    def __init__(self, detail: str, parameter: str | None = None, code: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.parameter = parameter
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.parameter}: {self.detail}" if self.parameter else self.detail

    def to_dict(self) -> dict:
        return {"error": self.code, "detail": self.detail, "parameter": self.parameter}


class SourceError(BookidxError):
    """A source file (ALTO, METS, PAGE, IIIF, image) cannot be read. ``parameter`` names it."""

    code = 422


class BadRequest(BookidxError):
    """A request or command-line argument is invalid."""

    code = 400


class NotFound(BookidxError):
    code = 404


class PayloadTooLarge(BookidxError):
    code = 413


class IndexMismatch(BookidxError):
    """The index was built with another model, dimension or a newer schema."""

    code = 409


class FetchError(BookidxError):
    """A remote resource could not be fetched (after retries)."""

    code = 502


class ConfigError(BookidxError):
    """Bad configuration: unknown model, missing index directory, invalid option."""

    code = 500
