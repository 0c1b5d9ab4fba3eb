"""gunicorn settings, all from the environment (see the README's configuration table)."""
import os

# One compute thread per worker: with one worker per core, BLAS thread pools only contend. Set
# here, before the app (and NumPy) is imported, rather than in a post_fork hook: slow work in a
# freshly forked worker widens gunicorn's window where a TERM sent during boot is lost.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


bind = f"{os.environ.get('HOST', '0.0.0.0')}:{_int('PORT', 8000)}"
# Predictions are CPU-bound: one sync worker per core keeps every core busy without
# oversubscribing it.
workers = _int("WORKERS", max(2, os.cpu_count() or 1))
worker_class = "sync"
# Load the models once in the master, before forking: workers share their memory pages,
# and a model that fails verification stops the server before any worker starts.
preload_app = True
timeout = _int("TIMEOUT", 30)
graceful_timeout = _int("GRACEFUL_TIMEOUT", 30)
keepalive = _int("KEEPALIVE", 5)
max_requests = _int("MAX_REQUESTS", 0)
max_requests_jitter = _int("MAX_REQUESTS_JITTER", 0)
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
# gunicorn's runtime control socket lives at one fixed path per user, so two servers on a
# machine would fight over it; reload and shutdown go through signals (HUP, TERM) instead.
control_socket_disable = True


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
