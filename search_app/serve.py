"""`kb-serve`: the production server, as `make run` and `make serve` start it, from any folder.

    kb-serve [gunicorn options]        e.g. kb-serve --workers 1, or KB_BIND=0.0.0.0:8000 kb-serve

Runs gunicorn in the foreground with the settings of search_app/gunicorn_conf.py (read as the
module `search_app.gunicorn_conf`, so an installed wheel needs no source checkout) and the app
`search_app.wsgi:app`. Options after the command go to gunicorn and override the settings file;
the KB_* variables (README, Configuration) are the usual way to change them.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

CONFIG = "python:search_app.gunicorn_conf"
APP = "search_app.wsgi:app"


def gunicorn_argv(argv: Sequence[str]) -> list[str]:
    """The gunicorn command line `kb-serve ARGV` stands for."""
    return ["kb-serve", "--config", CONFIG, *argv, APP]


def main(argv: Sequence[str] | None = None) -> int:
    from gunicorn.app.wsgiapp import WSGIApplication

    sys.argv = gunicorn_argv(sys.argv[1:] if argv is None else argv)
    WSGIApplication("%(prog)s [OPTIONS]", prog="kb-serve").run()  # returns only when the server stops
    return 0


if __name__ == "__main__":
    sys.exit(main())
