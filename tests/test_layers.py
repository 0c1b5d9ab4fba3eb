"""The layers and the route table: the rules between them hold, and every endpoint is declared once."""
from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest

from app.http import routes
from tests.conftest import ROOT

APP = ROOT / "app"
CORE = sorted(f"app.model.{p.stem}" for p in (APP / "model").glob("*.py") if p.stem != "__init__")
# Modules the direct path and the command-line tools use: no Flask, no Werkzeug.
FLASK_FREE = ["app", "app.config", "app.logs", *CORE, "app.http.payloads", "app.http.problems", "app.http.routes",
              "app.gateway", "app.gateway.direct", "app.gateway.auth", "app.gateway.ratelimit",
              "app.gateway.metrics", "app.gateway.access_log", "app.master", "app.jobs", "app.jobs.training",
              "app.jobs.local", "app.jobs.queue", "app.jobs.runner"]


def test_the_core_and_the_gateway_import_no_flask():
    """Import them with Flask and Werkzeug made unimportable: any import of either fails."""
    script = ("import sys\nsys.modules['flask'] = None\nsys.modules['werkzeug'] = None\nimport importlib\n"
              f"for name in {FLASK_FREE!r}:\n    importlib.import_module(name)\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug') and sys.modules[m]))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


def imported_modules(path) -> set[str]:
    """The app's modules a file imports, as absolute names."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found |= {module} | {f"{module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("app.")}


LAYER_RULES = [
    # files, the app modules they must not import
    ("model", ("app.http", "app.gateway", "app.factory")),
    ("jobs", ("app.http", "app.gateway", "app.factory")),  # run by a local process or an RQ worker: the core only
    ("http", ("app.gateway", "app.factory")),
    ("gateway", ("app.factory",)),
]


@pytest.mark.parametrize("layer, forbidden", LAYER_RULES, ids=[rule[0] for rule in LAYER_RULES])
def test_a_layer_imports_only_the_layers_beneath_it(layer, forbidden):
    files = list((APP / layer).rglob("*.py"))
    assert files
    broken = {str(path.relative_to(ROOT)): sorted(name for name in imported_modules(path) if name.startswith(forbidden))
              for path in files}
    assert not {path: names for path, names in broken.items() if names}


def flask_routes(app) -> dict[str, frozenset[str]]:
    found: dict[str, frozenset[str]] = {}
    for rule in app.url_map.iter_rules():  # a view per method is a rule per method
        found[rule.rule] = found.get(rule.rule, frozenset()) | (rule.methods - {"HEAD", "OPTIONS"})
    return found


def table_routes(enabled) -> dict[str, frozenset[str]]:
    return {route.rule: route.methods for route in routes.ROUTES if route.setting is None or enabled(route.setting)}


@pytest.mark.parametrize("metrics", [True, False], ids=["metrics-on", "metrics-off"])
def test_flask_serves_exactly_the_routes_in_the_table(make_app, metrics):
    app = make_app(METRICS=metrics)
    assert flask_routes(app) == table_routes(lambda setting: app.config[setting])


def test_a_route_missing_from_the_table_is_noticed(make_app):
    app = make_app()
    app.add_url_rule("/forgotten", "forgotten", lambda: "")
    assert flask_routes(app) != table_routes(lambda setting: app.config[setting])


@pytest.mark.parametrize("path, rule", [
    ("/predict", "/predict"), ("/models/titanic", "/models/<name>"), ("/models/titanic/2", "/models/<name>/<int:version>"),
    ("/models/titanic/two", None), ("/hello/Ada", "/hello/<name>"), ("/hello/a/b", None), ("/predict/", None),
    ("/static/web/page.js", "/static/web/<path:filename>"), ("/docs/swagger-ui.css", "/docs/<path:path>"),
    ("/static/../predict", None), ("/nope", None),
])
def test_a_raw_path_matches_the_route_flask_would_pick(path, rule):
    found = routes.match(path)
    assert (found.rule if found else None) == rule


def test_every_documented_endpoint_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for route in routes.ROUTES:
        shown = re.sub(r"<\w+:(\w+)>", r"<\1>", route.rule)
        for operation in route.operations:
            if operation.operation_id is not None:
                assert f"`{operation.method} {shown}`" in readme, (operation.method, shown)
