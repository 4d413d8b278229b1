"""Where a bookidx blueprint's JSON API answers, from the address a user gives
(``bookidx annotate --api-url``), for the links written into annotations.

The rule (:data:`API_URL_HELP` says it to users): the address is the blueprint's root, the one
``bookidx serve`` prints (``http://host:8000/bookidx/``), and the API is at ``api`` below it
(web/views.py's ``/api/…`` routes, wherever the blueprint is mounted). An address whose path
ends in ``/api`` is taken as the API root itself, so a blueprint mounted at ``…/api`` is given
as ``…/api/api``. A site's bare root (``http://host:8000/``, which redirects to ``/bookidx/``
under ``bookidx serve``) is refused: taken as a root it made links that were all 404s.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from .errors import BadRequest

#: --api-url's help: the rule above, in a user's words.
API_URL_HELP = (
    "Where `bookidx serve` (or a site mounting the blueprint) answers, for the 'similar images' links: "
    "the address serve prints, such as http://127.0.0.1:8000/bookidx/; links are that address + "
    "api/items/ID/similar. An address ending in /api is taken as the API root itself (a blueprint "
    "mounted at .../api: give .../api/api). A site's bare root (http://host:8000/) is refused."
)


def api_root(given: str) -> str:
    """The blueprint's API root (``…/bookidx/api``, no trailing slash) from ``given``: its
    root as ``bookidx serve`` prints it, or the API root itself (a path ending in ``/api``).

    Raises:
        BadRequest: ``given`` is not an http(s) URL with a host, or is a site's bare root.
    """
    parts = urlsplit(given.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise BadRequest(
            f"{given!r} is not where a bookidx server answers: give the http(s) address `bookidx serve` "
            "prints, such as http://127.0.0.1:8000/bookidx/", "api_url",
        )
    root = urlunsplit(parts).rstrip("/")
    if not parts.path.strip("/"):
        site = urlunsplit(parts[:2] + ("", "", ""))
        raise BadRequest(
            f"{given!r} is a site's root, not a bookidx blueprint's: `bookidx serve` answers at {site}/bookidx/ "
            f"(give that); for a blueprint mounted at the site's root, give its API root, {site}/api", "api_url",
        )
    return root if root.endswith("/api") else root + "/api"


def similar_link(root: str, key: int) -> str:
    """The "similar images" search of item ``key`` below the API root :func:`api_root` gave."""
    return f"{root}/items/{key}/similar"
