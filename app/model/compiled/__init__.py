"""The compiled backend: a fitted model's arithmetic in plain NumPy, for single rows and batches.

scikit-learn spends milliseconds per call on input validation, per-step checks and thread pools;
the model's own arithmetic for one row takes microseconds. ``compile_pipeline`` reads the fitted
parameters of the steps it knows and replays exactly that arithmetic in float64 (trees compare
float32-rounded inputs where scikit-learn does), so results match scikit-learn to rounding error.
Anything it does not recognise raises ``Unsupported`` and the caller keeps scikit-learn; the
registry also checks every compiled model against scikit-learn before serving it (``verify``).

Input is the matrix the decoder (app/model/decoding.py) produces: one float64 column per feature
in schema order, NaN for a gap, and for a category feature the category's index in the schema's list.
"""
from .program import Column, CompiledPipeline, Estimator, Unsupported, compile_estimator, compile_pipeline
from .verify import TOLERANCE, Mismatch, synthetic_rows, verify

__all__ = ["Column", "CompiledPipeline", "Estimator", "Unsupported", "compile_estimator", "compile_pipeline",
           "TOLERANCE", "Mismatch", "synthetic_rows", "verify"]
