"""sklearn-serve: scikit-learn models behind a REST API.

Layers (docs/architecture.md): the model core (``app.model``, no Flask), the HTTP layer
(``app.http``, Flask), the gateway (``app.gateway``, WSGI), put together by ``app.factory``;
settings in ``app.config``. Importing the package does no work: the factory loads on first use,
so ``train.py``, ``manage.py`` and ``gunicorn.conf.py`` can read ``app.config`` without Flask.
"""
from __future__ import annotations

from typing import Any

_FACTORY = frozenset({"create_app", "StartupError", "reload_models", "reload_keys"})


def __getattr__(name: str) -> Any:
    if name in _FACTORY:
        from . import factory

        return getattr(factory, name)
    raise AttributeError(f"module 'app' has no attribute {name!r}")
