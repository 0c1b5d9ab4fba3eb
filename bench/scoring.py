"""Batch scoring in `make bench`: `manage.py score` on a 5-million-row CSV of the default model.

- local engine: rows/s over the whole command (start-up and model load included) and its peak RSS;
- spark engine with local[2], against what a user writes by hand on the same file and model (the
  pattern of MLflow's spark_udf): read the CSV with a schema, broadcast the model, and
  ``mapInPandas`` over ``predict_proba`` (bench/spark_by_hand.py). Both are timed as whole
  commands, each starting its own Spark.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv

ROOT = Path(__file__).resolve().parent.parent
ROWS = int(os.environ.get("BENCH_SCORING_ROWS", "5000000"))


def write_rows(path: Path, rows: int = ROWS) -> Path:
    """The Pima test rows, drawn with replacement up to ``rows``, as a CSV with the header."""
    test = pd.read_csv(ROOT / "data" / "test.csv").drop(columns="Outcome")
    pcsv.write_csv(pa.Table.from_pandas(test.sample(rows, replace=True, random_state=0), preserve_index=False),
                   path, write_options=pcsv.WriteOptions(quoting_style="none"))
    return path


def timed(command: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS of the command in MB, stdout); the command must succeed."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"})
    out, err = process.communicate(timeout=1800)
    seconds = time.perf_counter() - started
    assert process.returncode == 0, f"{' '.join(command)} exited with {process.returncode}:\n{err[-3000:]}"
    # ru_maxrss of the children waited for so far: the largest, so measure the local run first
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, out


def measure(models_dir: Path, folder: Path, default_model: str) -> dict:
    source = write_rows(folder / "rows.csv")
    score = [sys.executable, "manage.py", "--models-dir", str(models_dir), "score", "--quiet",
             "--model", default_model]
    local_seconds, local_rss, _ = timed([*score, str(source), str(folder / "local.csv")])
    ours, _, _ = timed([*score, "--engine", "spark", "--master", "local[2]", str(source), str(folder / "spark.csv")])
    by_hand, _, _ = timed([sys.executable, "bench/spark_by_hand.py", str(models_dir), default_model, str(source),
                           str(folder / "by-hand.csv")])
    return {"rows": ROWS, "local_rows_per_second": ROWS / local_seconds, "local_rss_mb": local_rss,
            "spark_rows_per_second": ROWS / ours, "by_hand_rows_per_second": ROWS / by_hand,
            "local_seconds": local_seconds, "spark_seconds": ours, "by_hand_seconds": by_hand}


def report(measured: dict, target) -> list[str]:
    local, spark, hand = (measured[k] for k in ("local_rows_per_second", "spark_rows_per_second",
                                                "by_hand_rows_per_second"))
    return [
        "",
        f"## Batch scoring ({measured['rows']:,}-row CSV, default model)",
        "",
        "| run | seconds | rows/s |",
        "| --- | ---: | ---: |",
        f"| manage.py score (local engine) | {measured['local_seconds']:.1f} | {local:,.0f} |",
        f"| manage.py score --engine spark --master local[2] | {measured['spark_seconds']:.1f} | {spark:,.0f} |",
        f"| by hand: Spark local[2], mapInPandas + predict_proba | {measured['by_hand_seconds']:.1f} | {hand:,.0f} |",
        "",
        "Whole commands: both Spark runs include starting Spark (about 5 s here), reading the CSV and writing "
        "the output. The engine reads every cell as text (the API's rules, exactly) and writes the row number, "
        "both probabilities and the warnings; the hand-written job reads typed doubles and writes two columns.",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
        target("local engine >= 500,000 rows/s", f"{local:,.0f} rows/s", local >= 500_000),
        target("local engine peak RSS < 1 GB", f"{measured['local_rss_mb']:,.0f} MB", measured["local_rss_mb"] < 1024),
        target("spark engine >= 3x mapInPandas + predict_proba by hand", f"{spark / hand:.1f}x", spark >= 3 * hand),
    ]
