"""The tutorial-style service the benchmark compares against (not part of the product).

What most "turn your model into an API" tutorials write: the model loaded at import time, a
pandas DataFrame built per request, ``predict`` and ``predict_proba`` called separately, and
Flask's standard JSON. Run: MODEL_FILE=models/<name>/1/model.joblib gunicorn bench.baseline_app:app
"""
import os

import joblib
import pandas as pd
from flask import Flask, jsonify, request

app = Flask(__name__)
model = joblib.load(os.environ["MODEL_FILE"])


@app.get("/health")
def health():
    return jsonify({"status": "ok"})


@app.post("/predict")
def predict():
    data = request.get_json()
    frame = pd.DataFrame([data] if isinstance(data, dict) else data)
    labels = model.predict(frame)
    probabilities = model.predict_proba(frame)
    return jsonify({"predictions": [{"label": int(label), "probabilities": row.tolist()}
                                    for label, row in zip(labels, probabilities)]})
