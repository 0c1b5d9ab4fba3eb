"""The model card page: what training drew and measured for a version, for people.

A browser asking for ``/models/<name>/<version>`` gets this page (app/http/models.py asks
``routes.prefers_html``); API clients get the JSON as before. The plots and the Markdown card are
served from ``/models/<name>/<version>/card/<file>``, each checked against the sha256 its signed
metadata lists. Like the prediction page at ``/``, the card is open without an API key.
"""
from __future__ import annotations

from typing import Any

from flask import Response, current_app, render_template

from ...model import card as model_card
from ...model.errors import ModelNotFound, ModelUnavailable
from ...model.registry import LoadedModel, Registry, card_links
from . import bp

CONTENT_TYPES = {".svg": "image/svg+xml", ".md": "text/markdown; charset=utf-8"}


def registry() -> Registry:
    return current_app.extensions["registry"]


def loaded(name: str, version: int) -> LoadedModel:
    """The version, for these open routes: why a version failed to load (paths, hashes) is for
    key holders (GET /models/<name>), not for anyone who opens a card."""
    try:
        return registry().get(name, version)
    except ModelUnavailable:
        raise ModelUnavailable(f"model {name}/{version} is not available; see GET /models/{name} with an API "
                               "key for why") from None


def card_page(name: str, version: int) -> Response:
    found = registry()
    model = loaded(name, version)
    summary = model.metadata.get("card")
    folder = found.models_dir / name / str(version) / model_card.FOLDER
    missing = [plot["file"] for plot in (summary or {}).get("plots", []) if not (folder / plot["file"]).is_file()]
    links = card_links(name, version, summary, model.metadata.get("files") or {})
    body = render_template("card.html", model=model, card=summary, facts=facts(model), missing=missing,
                           markdown=links["markdown"] if links else None,
                           class_names=model_card.display_names(model.classes, model.metadata.get("class_names")),
                           needs_key=current_app.extensions["gateway"].keys is not None,
                           default=found.default_version(name) == version)
    return current_app.response_class(body, mimetype="text/html", headers={"Vary": "Accept"})


def facts(model: LoadedModel) -> list[tuple[str, str]]:
    """The lines a reviewer reads first, in order: what it predicts, from what, made how and when."""
    meta = model.metadata
    training = meta.get("training_data") or {}
    imported = meta.get("imported") or {}
    cv = meta.get("cv") or {}
    rows = [("predicts", f"{meta.get('target') or 'the target'} ({model.task})"),
            ("estimator", str(meta.get("estimator"))),
            ("features", ", ".join(model.schema.names)),
            ("created", str(meta.get("created")))]
    if training:
        rows.append(("trained on", f"{training.get('rows')} rows of {training.get('file')}"))
    if cv:
        rows.append(("chosen by", f"{cv.get('folds')}-fold cross-validation on {cv.get('scoring')}: "
                                  f"{cv.get('best_score')}"))
    if imported:
        source = imported.get("source") or {}
        rows.append(("imported from", f"{source.get('file', 'a Python object')} ({source.get('format', 'in memory')})"))
    rows.append(("answered by", model.backend))
    return rows


@bp.get("/models/<name>/<int:version>/card/<filename>")
def card_file(name: str, version: int, filename: str) -> Response:
    suffix = filename[filename.rfind("."):] if "." in filename else ""
    if suffix not in CONTENT_TYPES:
        raise ModelNotFound(f"model {name}/{version} has no card file {filename[:60]!r}")
    loaded(name, version)
    data = registry().read_file(name, version, f"{model_card.FOLDER}/{filename}")
    return current_app.response_class(data, mimetype=CONTENT_TYPES[suffix].split(";")[0],
                                      content_type=CONTENT_TYPES[suffix])
