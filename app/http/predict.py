"""Blueprint: predictions (``/predict``, MLflow's ``/invocations``).

A prediction is choose -> decode -> predict -> encode: pick the model (registry), decode the
payload against its contract, then predict and encode (app/http/payloads.py, shared with the
gateway's direct path).
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from ..model import explain
from ..model.contract import Decoded
from ..model.errors import InputError, InvalidInput
from ..model.registry import LoadedModel, Registry
from . import payloads
from .problems import MalformedRequest, PayloadTooLarge

bp = Blueprint("predict", __name__)

SELECTORS = ("model", "version", payloads.EXPLAIN)  # in the query string, beside GET's fields


def registry() -> Registry:
    return current_app.extensions["registry"]


def choose_model() -> LoadedModel:
    """The model named by ?model= and ?version=, or the default."""
    if not request.query_string:  # the common case: skip parsing an empty query string
        return registry().get()
    arguments = request.args
    version_text = arguments.get("version")
    version = None
    if version_text is not None:
        if not payloads.VERSION.fullmatch(version_text):
            raise MalformedRequest(f"version must be a positive whole number, got {version_text[:20]!r}")
        version = int(version_text)
    name = arguments.get("model") or None
    return registry().get(name, version)


def read_body() -> bytes:
    """The request body, read straight from the WSGI input when its length is declared.

    Werkzeug's stream wrappers cost more than the prediction itself for a small body; the
    size limit (MAX_CONTENT_LENGTH) is enforced here the same way, with a 413.
    """
    length = request.content_length
    stream = request.environ.get("wsgi.input")
    if length is None or stream is None or request.environ.get("wsgi.input_terminated"):
        return request.get_data(cache=False)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if length > limit:
        raise PayloadTooLarge(payloads.too_large(limit))
    return stream.read(length)


def decode_body(model: LoadedModel) -> payloads.Rows:
    kind = payloads.body_kind(request.mimetype, request.content_type)
    return payloads.decode_body(kind, read_body(), model.decoder, current_app.config["MAX_BATCH_ROWS"])


def explain_query() -> list[str]:
    """Every ?explain= value given (the checks want to see a repeat)."""
    return request.args.getlist(payloads.EXPLAIN) if request.query_string else []


def asked_explainer(model: LoadedModel, rows: payloads.Rows) -> explain.Explainer | None:
    """?explain= and the body's "explain": the explainer that answers, or None."""
    return payloads.explainer_for(model, len(rows.decoded.matrix), explain_query(), rows.explain,
                                  current_app.config["MAX_EXPLAINED_ROWS"], current_app.config["EXPLAIN_TIME_LIMIT"])


def decode_query(model: LoadedModel) -> Decoded:
    arguments = {k: v for k, v in request.args.lists() if k not in SELECTORS}
    if not arguments:
        example = "&".join(f"{k}={v}" for k, v in model.schema.example().items())
        raise MalformedRequest(f"give the fields as a query string, e.g. /predict?{example}")
    return payloads.decode_query(arguments, model.decoder)


def answer(model: LoadedModel, decoded: Decoded, plain: bool = False,
           explainer: explain.Explainer | None = None) -> Response:
    extensions = current_app.extensions
    body, headers = payloads.predict_and_encode(model, decoded, extensions.get("metrics"), plain, explainer,
                                                drift=extensions.get("drift"))
    return current_app.response_class(body, headers=headers)


@bp.post("/predict")
def predict_post() -> Response:
    model = choose_model()
    rows = decode_body(model)
    return answer(model, rows.decoded, explainer=asked_explainer(model, rows))


@bp.get("/predict")
def predict_get() -> Response:
    model = choose_model()
    decoded = decode_query(model)
    return answer(model, decoded, explainer=asked_explainer(model, payloads.Rows(decoded)))


@bp.post("/invocations")
def invocations() -> Response:
    """MLflow's scoring protocol: same inputs as POST /predict, MLflow's response shape."""
    model = choose_model()
    rows = decode_body(model)
    if payloads.wants_explanations(explain_query(), rows.explain):
        raise InvalidInput([InputError(None, payloads.EXPLAIN, "/invocations answers MLflow's plain list of "
                                                               "predictions; ask POST /predict for explanations")])
    return answer(model, rows.decoded, plain=True)
