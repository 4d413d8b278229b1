"""An existing library website that adds bookidx image search to its own pages.

The site has pages, templates and a URL scheme of its own; bookidx comes in as two blueprints,
one per collection, with no change to the rest of the site:

* ``/images/...``: the digitised books (``create_blueprint(books_index, name="images")``),
* ``/maps/...``: a second collection with its own index, settings and query model.

Run (after building two indexes, see README.md)::

    python examples/existing_site/app.py --books out/chapbooks --maps out/maps
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flask import Flask, render_template

from bookidx.web import create_blueprint

HERE = Path(__file__).resolve().parent


def create_app(books_index: str, maps_index: str, **settings) -> Flask:
    """The site. ``settings``: the site's own config, BOOKIDX_* keys included (apply to both)."""
    app = Flask(__name__, root_path=str(HERE))  # templates/ beside this file, however it is run
    app.config.update(SITE_NAME="Lauriston Castle Library", **settings)

    @app.route("/")
    def home():
        return render_template("home.html")

    @app.route("/pictures")
    def pictures():
        return render_template("pictures.html")

    @app.route("/maps-search")
    def maps_search():
        return render_template("maps.html")

    # Two collections. Each blueprint is a new object with its own index and settings; the
    # maps get a smaller page size than the site-wide default.
    app.register_blueprint(create_blueprint(books_index, name="images"))
    app.register_blueprint(create_blueprint(maps_index, name="maps", default_limit=12))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--books", required=True, help="index directory of the books collection")
    parser.add_argument("--maps", required=True, help="index directory of the maps collection")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    from waitress import serve

    serve(create_app(args.books, args.maps), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
