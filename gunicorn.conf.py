"""gunicorn settings, all from the environment through app/config.py (see the README's configuration table)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the app, wherever gunicorn was started

# One compute thread per worker: with one worker per core, BLAS thread pools only contend. Set
# here, before the app (and NumPy) is imported, rather than in a post_fork hook: slow work in a
# freshly forked worker widens gunicorn's window where a TERM sent during boot is lost.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

# Every setting is parsed and checked by the app's one configuration module: a bad value stops
# the server with one line naming the variable, before anything else is loaded.
from app import config as _config  # noqa: E402 - after the thread settings above; imports nothing heavy
# (module-level names are gunicorn settings, so the helpers here start with an underscore)

try:
    _settings = _config.load()
except _config.ConfigError as _error:
    raise SystemExit(f"error: cannot start: configuration: {_error}") from None

# Prometheus multiprocess mode: each worker writes its metrics under this folder and /metrics adds
# them up. It must be set before the app imports prometheus_client; a fresh folder per server
# (unless one is given) so counts from an earlier run never leak in. Kept across HUP reloads.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="model-server-metrics-")
    os.environ["MODEL_SERVER_METRICS_DIR_OWNER"] = str(os.getpid())
# Drift counts (app/gateway/drift.py): one file per worker and model version, summed by whichever
# worker answers; inside the metrics folder, so they start fresh and are removed with it.
os.environ["MODEL_SERVER_DRIFT_DIR"] = os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "drift")

bind = f"{_settings['HOST']}:{_settings['PORT']}"
# Predictions are CPU-bound: one sync worker per core keeps every core busy without
# oversubscribing it.
workers = _settings["WORKERS"]
worker_class = "sync"
# Load the models once in the master, before forking: workers share their memory pages,
# and a model that fails verification stops the server before any worker starts.
preload_app = True
timeout = _settings["TIMEOUT"]
graceful_timeout = _settings["GRACEFUL_TIMEOUT"]
keepalive = _settings["KEEPALIVE"]
max_requests = _settings["MAX_REQUESTS"]
max_requests_jitter = _settings["MAX_REQUESTS_JITTER"]
# The app writes the access log itself (app/gateway/access_log.py: text or JSON, with the request
# id, never bodies or keys), so gunicorn's own is off.
accesslog = None
errorlog = "-"
loglevel = _settings["LOG_LEVEL"].lower()
# LOG_FORMAT=json: gunicorn's own lines (booting, signals, worker deaths) as JSON too, in the
# app's format, so every line on stderr parses.
if _settings["LOG_FORMAT"] == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "WARNING", "handlers": ["error_console"]},
        "loggers": {
            "gunicorn.error": {"level": _settings["LOG_LEVEL"], "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
        "handlers": {"error_console": {"class": "logging.StreamHandler", "formatter": "json",
                                       "stream": "ext://sys.stderr"}},
        "formatters": {"json": {"()": "app.logs.JsonFormatter"}},
    }
# `make reload` finds the master here; unset, no file is written (tests run several servers).
pidfile = _settings["PIDFILE"]
# Request line and header limits (gunicorn answers 414 or 431 beyond them, before the app sees anything).
limit_request_line = _settings["LIMIT_REQUEST_LINE"]
limit_request_fields = _settings["LIMIT_REQUEST_FIELDS"]
limit_request_field_size = _settings["LIMIT_REQUEST_FIELD_SIZE"]
# gunicorn's runtime control socket lives at one fixed path per user, so two servers on a
# machine would fight over it; reload and shutdown go through signals (HUP, TERM) instead.
control_socket_disable = True


def _write_problem(sock, status_int, reason, mesg):
    """gunicorn's answer to a request it cannot parse (400, 414, 431, ...), as problem+json like
    every other error of this service instead of gunicorn's HTML page."""
    import uuid

    import orjson
    from gunicorn import util

    from app.http.problems import PROBLEM_TYPE, problem_document

    request_id = uuid.uuid4().hex
    body = orjson.dumps(problem_document(status_int, f"http-{status_int}", reason, mesg or reason,
                                        request_id=request_id)) + b"\n"
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: {PROBLEM_TYPE}\r\n"
            f"Content-Length: {len(body)}\r\nX-Content-Type-Options: nosniff\r\nX-Request-ID: {request_id}\r\n"
            "Cache-Control: no-store\r\n\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)


def on_starting(server):
    """Start the metrics and drift counts from zero: remove what an earlier server left in a folder it was given."""
    from gunicorn import util

    util.write_error = _write_problem  # the workers (forked from here) call it through the module
    # the admin API and local training jobs ask for a reload by HUP (app/master.py)
    os.environ["MODEL_SERVER_MASTER_PID"] = str(os.getpid())
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.remove(os.path.join(folder, name))
    import shutil

    shutil.rmtree(os.environ["MODEL_SERVER_DRIFT_DIR"], ignore_errors=True)  # and the drift counts


def on_reload(server):
    """HUP: load the models (and the API key file) again in the master, before gunicorn forks the
    new workers, so they serve the new versions while the old workers finish their requests. A set
    of models that cannot serve the default model is refused and the old one keeps serving."""
    from app import reload_keys, reload_models

    app = server.app.wsgi()
    for step in (reload_models, reload_keys):
        try:
            step(app)
        except Exception:  # noqa: BLE001 - an exception here would end the master and every worker
            server.log.exception("reload: %s failed; the server keeps what it had", step.__name__)


def when_ready(server):
    """MODELS_POLL_INTERVAL: watch MODELS_DIR from the master, so a replica sharing the models
    volume reloads by itself when another one (or manage.py, or a training worker) changes it."""
    interval = _settings["MODELS_POLL_INTERVAL"]
    if interval:
        import threading

        threading.Thread(target=_watch_models, args=(server, interval), name="models-poll", daemon=True).start()


def _watch_models(server, interval):
    """Compare the folder with what the last (re)load saw; a difference is a HUP to this master.
    It reads each version's metadata (a few kilobytes) every interval; never the reload itself, which
    stays on the main thread."""
    import signal
    import time

    from app.model.artifacts import folder_state

    app = server.app.wsgi()
    models_dir = app.config["MODELS_DIR"]
    asked_for = None
    while True:
        time.sleep(interval)
        try:
            found = folder_state(models_dir)
            if found != app.extensions.get("models_state") and found != asked_for:
                asked_for = found
                server.log.info("%s changed: reloading the models", models_dir)
                os.kill(os.getpid(), signal.SIGHUP)
        except Exception:  # noqa: BLE001 - a failed look is retried next interval; the server serves on
            server.log.exception("looking at %s for changes failed", models_dir)


def child_exit(server, worker):
    """A worker's live gauges (model_info) go with it."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.get("MODEL_SERVER_METRICS_DIR_OWNER") == str(os.getpid()):
        import shutil

        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def pre_fork(server, worker):
    """Move the loaded models out of the garbage collector's sight before forking, so collections
    in a worker do not touch (and so copy) the pages it shares with the master."""
    import gc

    gc.freeze()



def post_fork(server, worker):
    """Until the worker installs its own handlers, a TERM it receives would go to the handler
    inherited from the master and be lost, and shutdown would wait out the graceful timeout.
    Default handling in that window ends a booting worker at once, which is what TERM asks."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
