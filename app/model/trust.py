"""Which types a model file may make: skops' own list, the project's reviewed additions, and
what the operator adds in configuration, never anything the artifact says about itself.

skops builds only the types it trusts and names the rest (``get_untrusted_types``). scikit-learn
1.9.1 models hold a few internals that skops does not trust by default; the project vouches for
exactly these (``DEFAULT_TRUSTED_TYPES``, tested against every estimator the service supports).
An operator who serves something else adds its types with ``TRUSTED_TYPES`` or
``TRUSTED_TYPES_FILE``; a model holding any other type is refused, naming the types and the
setting. (MLflow had to stop trusting what the artifact lists: mlflow#25686.)
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

DEFAULT_TRUSTED_TYPES = frozenset({
    "numpy.dtype",  # every fitted estimator's arrays carry one
    "sklearn.tree._tree.Tree",  # decision trees, forests, extra trees, gradient boosting
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # HistGradientBoosting
    "sklearn.calibration._CalibratedClassifier",  # CalibratedClassifierCV (the default model)
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.calibration._TemperatureScaling",
    "sklearn.neighbors._kd_tree.KDTree",  # k-nearest neighbours
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    # A ColumnTransformer's passthrough columns: FunctionTransformer(func=partial(check_array, ...)).
    # skops lists a partial's function as a type of its own, so trusting partial admits only
    # functions that are trusted too.
    "functools.partial",
    "sklearn.utils.validation.check_array",
})
SETTINGS_HINT = "TRUSTED_TYPES (comma-separated) or TRUSTED_TYPES_FILE (one per line)"


class TrustError(Exception):
    """A trusted-types file that cannot be read."""


def trusted_types(configured: Iterable[str] = (), file: str | Path | None = None) -> frozenset[str]:
    """The project's list, plus the operator's from the settings and the file."""
    extra = {name.strip() for name in configured if name.strip()}
    if file is not None:
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise TrustError(f"TRUSTED_TYPES_FILE {file} cannot be read ({exc})") from None
        extra |= {line.split("#", 1)[0].strip() for line in lines} - {""}
    return DEFAULT_TRUSTED_TYPES | extra


def untrusted_in(data: bytes, trusted: frozenset[str]) -> tuple[list[str], list[str]]:
    """(types skops will not build unless told, those of them not in ``trusted``), for a skops file."""
    import skops.io as sio

    listed = sorted(sio.get_untrusted_types(data=data))
    return listed, [name for name in listed if name not in trusted]
