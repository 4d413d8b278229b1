"""Serve the widget examples beside a bookidx collection, on one origin.

    python examples/widget/serve.py INDEX_DIR [--port 8000]

then open http://127.0.0.1:8000/ (plain page), /openseadragon.html, /mirador.html or /uv.html. Run
``examples/widget/install.sh`` first for the viewer pages. The collection is the blueprint from
``bookidx.web.create_blueprint`` at ``/bookidx``, as ``bookidx serve`` mounts it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flask import Flask, abort, send_from_directory
from waitress import serve

from bookidx.web import create_blueprint

HERE = Path(__file__).resolve().parent
PAGES = {"index.html", "openseadragon.html", "mirador.html", "uv.html", "iiif.js"}


def create_examples_app(index_dir: str) -> Flask:
    """The collection at /bookidx, the example pages at / and their viewers from node_modules/."""
    app = Flask(__name__, static_folder=None)
    app.register_blueprint(create_blueprint(index_dir))

    @app.get("/")
    @app.get("/<path:name>")
    def example(name: str = "index.html"):
        if name not in PAGES and not name.startswith("node_modules/"):
            abort(404)
        return send_from_directory(HERE, name)  # refuses paths that leave HERE

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the widget examples beside a bookidx collection.")
    parser.add_argument("index_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    print(f"examples on http://{args.host}:{args.port}/")
    serve(create_examples_app(args.index_dir), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
