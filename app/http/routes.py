"""The route table: every endpoint, declared once, with what each layer needs to know of it.

The blueprints register the views; this table says, per route, which methods it answers,
whether it is open without an API key and counted by the rate limit (the gateway), which
security headers it gets (the gateway), its label in the metrics (the rule itself: bounded), and
its OpenAPI operation (app/http/openapi.py). A test fails when Flask's routes and this table
disagree, so a new endpoint is one line here plus its view.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

API, PAGE, DOCS, ASSET = "api", "page", "docs", "asset"  # kinds of security headers
UNMATCHED = "<unmatched>"  # the metrics label of every path no route matches


@dataclass(frozen=True)
class Operation:
    method: str
    operation_id: str | None = None  # None: left out of the OpenAPI document
    summary: str = ""


@dataclass(frozen=True)
class Route:
    rule: str  # Flask's rule, and the route's metrics label
    operations: tuple[Operation, ...]
    open: bool = False  # answered without an API key (probes, the page, the docs)
    admin: bool = False  # needs an admin key (ADMIN_API_KEYS); without admin keys configured, 404
    limited: bool = True  # counted by the rate limit
    headers: str = API
    setting: str | None = None  # served only while this setting is on
    page: bool = False  # a browser's GET (Accept prefers text/html) gets a page: open, with the page's headers

    @property
    def methods(self) -> frozenset[str]:
        return frozenset(o.method for o in self.operations)


def get(operation_id: str | None = None, summary: str = "") -> Operation:
    return Operation("GET", operation_id, summary)


def post(operation_id: str | None = None, summary: str = "") -> Operation:
    return Operation("POST", operation_id, summary)


def delete(operation_id: str | None = None, summary: str = "") -> Operation:
    return Operation("DELETE", operation_id, summary)


ROUTES: tuple[Route, ...] = (
    Route("/predict", (post("predict", "Predict one record, a batch, or a CSV file"),
                       get("predictFromQuery",
                           "Predict one record given as a query string (an empty value means missing)"))),
    Route("/invocations", (post("invocations", "MLflow scoring protocol: the same inputs, labels only"),)),
    Route("/ping", (get("ping", "MLflow health probe"),), open=True),
    Route("/models", (get("listModels", "Every model, its versions and the default"),)),
    Route("/models/<name>", (get("describeModel", "A model's metadata: schema, example, classes, metrics"),)),
    Route("/models/<name>/<int:version>", (get("describeModelVersion", "One version's metadata (a browser gets its "
                                                                        "model card page)"),), page=True),
    Route("/models/<name>/<int:version>/card/<filename>", (get("getModelCardFile", "A file of the version's model "
                                                                                   "card: a plot (SVG) or README.md"),),
          open=True),
    Route("/models/<name>/<int:version>/drift", (get("modelDrift", "Drift over the rolling window: PSI per feature "
                                                                    "and of the predictions, with each bin's shares"),)),
    # the admin API (app/http/admin.py): model lifecycle, for admin keys only
    Route("/models/<name>/versions", (post("uploadModelVersion", "Upload a signed version: checked as at startup, "
                                                                 "stored as the next version"),), admin=True),
    Route("/models/<name>/versions/<int:version>", (delete("deleteModelVersion", "Delete a version that is not served"),),
          admin=True),
    Route("/models/<name>/promote", (post("promoteModel", "Serve this version by default, on every worker"),),
          admin=True),
    Route("/models/<name>/rollback", (post("rollbackModel", "Serve the version served before this one"),), admin=True),
    Route("/models/<name>/train", (post("trainModel", "Retrain on a CSV, as train.py does, in a job"),), admin=True),
    Route("/jobs/<job_id>", (get("getJob", "A training job's state, progress and result"),), admin=True),
    Route("/health", (get("health", "Liveness"),), open=True),
    Route("/ready", (get("ready", "Readiness: the default model is loaded and verified"),), open=True),
    Route("/hello", (get("hello", "A greeting"),), open=True),
    Route("/hello/<name>", (get("helloName", "A greeting by name"),), open=True),
    Route("/metrics", (get("metrics", "Prometheus metrics (text exposition format)"),), limited=False,
          setting="METRICS"),
    Route("/", (get(),), open=True, headers=PAGE),
    Route("/favicon.ico", (get(),), open=True, headers=PAGE),
    Route("/static/web/<path:filename>", (get(),), open=True, headers=ASSET),
    Route("/openapi.json", (get(),), open=True),
    Route("/docs/", (get(),), open=True, headers=DOCS),
    Route("/docs/<path:path>", (get(),), open=True, headers=DOCS),
)

def prefers_html(accept: str | None) -> bool:
    """Whether an Accept header ranks text/html above JSON: a browser's navigation does
    (``text/html,...,*/*;q=0.8``), curl's ``*/*`` and a tie do not. The gateway (which lets a page
    through without an API key) and the view (which renders it) both ask this, so they agree."""
    if not accept or "html" not in accept:
        return False
    quality: dict[str, float] = {}
    for part in accept.split(","):
        kind, *parameters = part.strip().split(";")
        value = 1.0
        for parameter in parameters:
            key, _, number = parameter.strip().partition("=")
            if key == "q":
                try:
                    value = float(number)
                except ValueError:
                    value = 0.0
        quality.setdefault(kind.strip().lower(), value)
    html = quality.get("text/html", 0.0)
    json = quality.get("application/json", quality.get("application/*", quality.get("*/*", 0.0)))
    return html > 0 and html > json


_CONVERTERS = {"": "[^/]+", "int": "[0-9]+", "path": ".+"}
_VARIABLE = re.compile(r"<(?:(\w+):)?(\w+)>")


def _pattern(rule: str) -> re.Pattern:
    parts, end = [], 0
    for variable in _VARIABLE.finditer(rule):
        parts += [re.escape(rule[end:variable.start()]), _CONVERTERS[variable.group(1) or ""]]
        end = variable.end()
    return re.compile("".join([*parts, re.escape(rule[end:])]))


_EXACT = {route.rule: route for route in ROUTES if "<" not in route.rule}
_PATTERNS = [(_pattern(route.rule), route) for route in ROUTES if "<" in route.rule]


_AS_PAGE = {route.rule: replace(route, open=True, headers=PAGE) for route in ROUTES if route.page}


def as_page(route: Route) -> Route:
    """The route as a browser's page: answered without an API key, with the page's headers."""
    return _AS_PAGE[route.rule]


def match(path: str) -> Route | None:
    """The route a raw request path belongs to, or None; one dict look-up for the fixed paths."""
    route = _EXACT.get(path)
    if route is not None:
        return route
    for pattern, candidate in _PATTERNS:
        if pattern.fullmatch(path):
            return candidate
    return None


def openapi_path(rule: str) -> str:
    """'/models/<name>/<int:version>' -> '/models/{name}/{version}'."""
    return _VARIABLE.sub(lambda variable: "{" + variable.group(2) + "}", rule)
