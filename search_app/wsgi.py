"""The WSGI entry point `make run` (kb-serve) hands to gunicorn: `search_app.wsgi:app`.

Each gunicorn worker imports this module once, so each worker builds one app, loads the model and
the live index once, and runs one search before it takes traffic (WARM_UP): the first real request
does not pay for loading the model, opening the index or PyTorch's first-call set-up.
"""
from search_app.factory import create_app

app = create_app({"WARM_UP": True})
