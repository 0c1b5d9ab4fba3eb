"""What the model core raises: plain exceptions, no HTTP statuses.

The HTTP layer maps each to a status in one table (app/http/errors.py); the command-line tools
print their message after ``error:``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ModelError(Exception):
    """A model cannot be used as asked; the message says why and what to do."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class ModelNotFound(ModelError):
    """No such model or version."""


class ModelUnavailable(ModelError):
    """The model exists but could not be loaded (verification failed, a broken pin)."""


class LifecycleConflict(ModelError):
    """A change the model's state does not allow (delete the served version, promote against
    MODEL_VERSION, nothing to roll back to)."""


@dataclass(frozen=True)
class InputError:
    """One thing wrong with the input: which row (None: the whole payload), which field, and what."""

    row: int | None
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "problem": self.message}  # "problem": the API's word


class InvalidInput(Exception):
    """Rows that cannot be predicted; carries every error found, not just the first."""

    def __init__(self, errors: list[InputError]):
        super().__init__(f"{len(errors)} input error(s)")
        self.errors = errors

    def summary(self) -> str:
        """'3 problems in 2 rows'."""
        rows = {e.row for e in self.errors if e.row is not None}
        text = f"{len(self.errors)} problem{'s' * (len(self.errors) != 1)}"
        if rows:
            text += f" in {len(rows)} row{'s' * (len(rows) != 1)}"
        return text


class ArtifactRefused(InvalidInput):
    """An uploaded version the server would not load; carries every problem found (field: the part)."""
