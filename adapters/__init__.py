"""bookidx.adapters: pure readers from what libraries publish to illustration regions.

Parsers take bytes (or parsed JSON) and return frozen records (records.py); they never touch
the network. Anything linked (ALTO behind a IIIF ``seeAlso``, collections, METS files) is
loaded through a ``load(uri) -> bytes`` callable that the caller supplies.
"""

from .records import Book, Box, ImageRef, Page, Problem, Region, RegionFilter, Report

__all__ = ["Book", "Box", "ImageRef", "Page", "Problem", "Region", "RegionFilter", "Report"]
