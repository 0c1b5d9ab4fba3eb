"""Drift counting: the rows each model version is asked, in its reference's bins, over a rolling
window, counted across every gunicorn worker.

A prediction only copies its decoded rows and answers into a buffer allocated once per version
(``observe``: about a microsecond for a row); the rows are folded into bin counts in batches
(app/model/drift.py's ``Bins.count``, vectorised), every ``FOLD_SECONDS`` by a thread of the
worker or as soon as a buffer is full (``WAITING_ROWS``). Counts live in time slots: the window
(DRIFT_WINDOW seconds) is ``SLOTS`` slots, so it moves in steps of a twelfth and always covers
between 11/12 of it and all of it.

Under gunicorn each worker writes its counts to a file of its own (a NumPy memmap, one per model
version and worker pid) in the folder gunicorn.conf.py prepares (``MODEL_SERVER_DRIFT_DIR``,
inside the metrics folder, removed with it), and a reader (``/metrics``, the drift endpoint) sums
the files of the slots still in the window: any worker answers for all of them, and the rows a
worker served still count after it exits, until they age out. Without that variable (tests,
``flask run``) the counts live in the process.

Nothing here may fail or slow a prediction: every error is logged at most once a minute and the
prediction is served as if drift were off (as app/gateway/metrics.py does). Imports no Flask.
"""
from __future__ import annotations

import atexit
import functools
import logging
import os
import secrets
import threading
import time
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..model import drift

log = logging.getLogger("app.drift")

SLOTS = 12  # the window moves in steps of 1/SLOTS of its length
FOLD_SECONDS = 1.0  # a worker's waiting rows reach its counts file at least this often
WAITING_ROWS = 2048  # ... or as soon as a version's buffer of this many rows is full
MISSING = object()
DIRECTORY_VARIABLE = "MODEL_SERVER_DRIFT_DIR"
SUFFIX = ".drift.npy"

Key = tuple[str, int]


def counts_dir() -> Path | None:
    folder = os.environ.get(DIRECTORY_VARIABLE)
    return Path(folder) if folder else None


class DriftWindow:
    """This server's drift counts: written by ``observe`` (each prediction) and ``fold``, read by
    ``report`` (the endpoint, the gauges) summed over every worker's counts in the window."""

    def __init__(self, window_seconds: int, min_rows: int, folder: Path | None = None):
        self.window_seconds = window_seconds
        self.slot_seconds = window_seconds / SLOTS
        self.min_rows = min_rows
        self.folder = folder
        self._bins: dict[Key, tuple[drift.Bins | None, str | None]] = {}
        self._last_failure_log = -1e9
        self._swept = -1  # the slot in which every version's count files were last swept
        self._reset()
        # gunicorn forks the workers from a master that never counts: each starts afresh
        os.register_at_fork(after_in_child=functools.partial(_call_if_alive, weakref.WeakMethod(self._reset)))

    def _reset(self) -> None:
        """A fresh start in this process (at creation, and in a forked worker)."""
        self._started = False
        self._lock = threading.Lock()  # the waiting rows: a prediction's copy, a fold's take
        self._folding = threading.Lock()  # one fold at a time: the timer's, a full buffer's or a reader's
        self._waiting: dict[Key, Waiting | None] = {}  # None: a version without a reference, never counted
        self._counts: dict[Key, np.ndarray] = {}  # this process's: (SLOTS, 1 + width): slot number, counts

    # ---- the prediction's side: cheap ------------------------------------------------------
    def observe(self, model, matrix: np.ndarray, output) -> None:
        """Copy the rows a model answered, and its answers, into the version's waiting buffer; they
        are counted later, in a batch. A copy rather than a reference: the request's arrays are
        freed as soon as it ends, and the memory they held is reused while it is still in cache."""
        try:
            if not self._started:
                self._start()
            key = (model.name, model.version)
            waiting = self._waiting.get(key, MISSING)
            if waiting is MISSING:
                waiting = self._waiting[key] = Waiting.for_model(model, self.bins(model)[0])
            if waiting is None:
                return
            answers = drift.counted_answers(output, model.task)
            with self._lock:
                if waiting.add(matrix, answers):
                    return
            self.fold()  # the buffer is full: count it, and this answer with it
            with self._lock:
                if waiting.add(matrix, answers):
                    return
            self._add(key, waiting.bins.count(matrix, answers))  # a batch larger than the buffer
        except Exception as exc:  # noqa: BLE001 - drift never fails a prediction
            self._failed(exc)

    def _start(self) -> None:
        self._started = True
        if self.folder is not None:  # a worker: fold on a timer too, so an idle worker's rows show,
            threading.Thread(target=self._fold_regularly, name="drift-fold", daemon=True).start()
            atexit.register(self._fold_quietly)  # and when it exits (a reload, MAX_REQUESTS): none are lost

    def _fold_regularly(self) -> None:
        while True:
            time.sleep(FOLD_SECONDS)
            self._fold_quietly()

    def _fold_quietly(self) -> None:
        try:
            self.fold()
        except Exception as exc:  # noqa: BLE001 - the next fold tries again; nothing else depends on it
            self._failed(exc)

    def fold(self) -> None:
        """Add the waiting rows to this process's counts, one vectorised pass per model version."""
        with self._folding:
            self._fold()

    def _fold(self) -> None:
        for key, waiting in list(self._waiting.items()):
            if waiting is None:
                continue
            with self._lock:
                matrix, answers = waiting.take()
            if len(matrix):
                self._add(key, waiting.bins.count(matrix, answers))

    def _add(self, key: Key, counted: np.ndarray) -> None:
        """Add counts to this process's current slot of a version."""
        slot = self._slot(time.time())
        counts = self._own_counts(key, len(counted))
        row = slot % SLOTS
        if counts[row, 0] != slot:  # a slot that left the window: start it again
            counts[row, 1:] = 0
            counts[row, 0] = slot
        counts[row, 1:] += counted

    def _own_counts(self, key: Key, width: int) -> np.ndarray:
        counts = self._counts.get(key)
        if counts is None:
            if self.folder is None:
                counts = np.zeros((SLOTS, 1 + width), dtype=np.int64)
            else:
                self.folder.mkdir(parents=True, exist_ok=True)
                # the pid says whether the writer lives; the token keeps a reused pid from truncating
                # the counts a dead worker left in the window
                path = self.folder / f"{key[0]}@{key[1]}@{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
                counts = np.lib.format.open_memmap(path, mode="w+", dtype=np.int64, shape=(SLOTS, 1 + width))
            counts[:, 0] = -1
            self._counts[key] = counts
        return counts

    def _slot(self, now: float) -> int:
        return int(now // self.slot_seconds)

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_failure_log > 60:
            self._last_failure_log = now
            log.error("drift not counted (%s: %s); serving without it", type(exc).__name__, exc)

    # ---- the reader's side: /metrics and the drift endpoint ----------------------------------
    def bins(self, model) -> tuple[drift.Bins | None, str | None]:
        """A version's bins (built once), or None and why it has none."""
        key = (model.name, model.version)
        found = self._bins.get(key)
        if found is None:
            found = self._bins[key] = drift.bins_for(model.schema, model.metadata, model.task, model.classes)
        return found

    def window_counts(self, model, bins: drift.Bins, now: float) -> np.ndarray:
        """The counts of the slots in the window, summed over every worker (this one's waiting rows
        first), for one model version."""
        self._fold_quietly()  # if it fails, the counts still hold what was folded before
        newest = self._slot(now)
        total = np.zeros(bins.width, dtype=np.int64)
        for counts in self._all_counts((model.name, model.version), newest):
            if counts.shape != (SLOTS, 1 + bins.width):
                continue  # another layout (cannot happen for one name/version; never summed wrongly)
            slots = counts[:, 0]
            inside = (slots > newest - SLOTS) & (slots <= newest)
            total += counts[inside, 1:].sum(axis=0)
        return total

    def _all_counts(self, key: Key, newest: int) -> list[np.ndarray]:
        if self.folder is None:
            own = self._counts.get(key)
            return [] if own is None else [own]
        if newest != self._swept:  # once a slot, every version's files: deleted versions' too
            self._swept = newest
            self._counts_in(f"*{SUFFIX}", newest)
        return self._counts_in(f"{key[0]}@{key[1]}@*{SUFFIX}", newest)

    def _counts_in(self, pattern: str, newest: int) -> list[np.ndarray]:
        """The count files matching ``pattern``; an exited worker's whose counts all aged out of
        the window are removed instead."""
        found = []
        for path in self.folder.glob(pattern):
            try:
                counts = np.load(path, mmap_mode="r")
            except (OSError, ValueError):  # being created, or removed meanwhile
                continue
            if counts[:, 0].max() <= newest - SLOTS and not _alive(path):
                path.unlink(missing_ok=True)
                continue
            found.append(counts)
        return found

    def report(self, model, now: float | None = None) -> dict[str, Any]:
        """The drift of one version over the window: the JSON endpoint's document."""
        now = time.time() if now is None else now
        bins, reason = self.bins(model)
        head = {"model": {"name": model.name, "version": model.version}, "window": self.window(now)}
        if bins is None:
            return {**head, "available": False, "reason": reason}
        return {**head, "available": True, **bins.compare(self.window_counts(model, bins, now), self.min_rows)}

    def window(self, now: float) -> dict[str, Any]:
        start = (self._slot(now) - SLOTS + 1) * self.slot_seconds
        return {"seconds": self.window_seconds, "step_seconds": round(self.slot_seconds, 3),
                "from": _timestamp(start), "to": _timestamp(now)}


class Waiting:
    """One version's rows and answers waiting to be counted, in arrays allocated once."""

    __slots__ = ("bins", "matrix", "answers", "size")

    def __init__(self, bins: drift.Bins, width: int):
        self.bins = bins
        self.matrix = np.empty((WAITING_ROWS, width))
        self.answers = np.empty(WAITING_ROWS)  # class indices are exact in a float64
        self.size = 0

    @classmethod
    def for_model(cls, model, bins: drift.Bins | None) -> "Waiting | None":
        return None if bins is None else cls(bins, len(model.schema.features))

    def add(self, matrix: np.ndarray, answers: np.ndarray) -> bool:
        """Copy the rows in, if they fit."""
        start, rows = self.size, len(answers)
        if start + rows > WAITING_ROWS:
            return False
        if rows == 1:
            self.matrix[start] = matrix[0]
            self.answers[start] = answers[0]
        else:
            self.matrix[start:start + rows] = matrix
            self.answers[start:start + rows] = answers
        self.size = start + rows
        return True

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """The waiting rows (copies), leaving the buffer empty."""
        rows, self.size = self.size, 0
        return self.matrix[:rows].copy(), self.answers[:rows].copy()


def _call_if_alive(method: weakref.WeakMethod) -> None:
    found = method()
    if found is not None:
        found()


def _alive(path: Path) -> bool:
    pid = int(path.name[: -len(SUFFIX)].rsplit("@", 1)[1].split("-")[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
