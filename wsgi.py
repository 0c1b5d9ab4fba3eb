"""What gunicorn imports: ``gunicorn -c gunicorn.conf.py wsgi:app``."""
from app import StartupError, create_app

try:
    app = create_app()
except StartupError as exc:
    # One clear line and a non-zero exit instead of a traceback or a half-working server.
    raise SystemExit(f"error: cannot start: {exc}") from None
