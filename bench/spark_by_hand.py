"""What a user writes by hand to score a CSV with a scikit-learn model on Spark (the pattern of
MLflow's spark_udf): the model broadcast, the CSV read with a schema, mapInPandas over
predict_proba. The baseline of bench/scoring.py.

    python bench/spark_by_hand.py MODELS_DIR MODEL INPUT_CSV OUTPUT_DIR
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark.sql import SparkSession  # noqa: E402

from app.model import artifacts  # noqa: E402


def main(models_dir: str, name: str, source: str, output: str) -> None:
    version = artifacts.list_versions(models_dir, name)[-1]
    model = artifacts.load(Path(models_dir) / name / str(version)).model  # the fitted Pipeline
    features = list(model.feature_names_in_)
    spark = (SparkSession.builder.master("local[2]").appName("by hand").config("spark.ui.enabled", "false")
             .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    broadcast = spark.sparkContext.broadcast(model)
    schema = ", ".join(f"`{f}` double" for f in features)
    frame = spark.read.csv(source, header=True, schema=schema)

    def predict(batches):
        import pandas as pd

        fitted = broadcast.value
        for batch in batches:
            probabilities = fitted.predict_proba(batch[features])
            yield pd.DataFrame({"label": fitted.classes_[probabilities.argmax(axis=1)].astype("int64"),
                                "probability": probabilities[:, 1]})

    frame.mapInPandas(predict, "label long, probability double").write.mode("overwrite").csv(output)
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:5])
