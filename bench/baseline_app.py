"""The tutorial-style service the benchmark compares against (not part of the product).

What most "turn your model into an API" tutorials write: the model loaded at import time, a
pandas DataFrame built per request, ``predict`` and ``predict_proba`` called separately, and
Flask's standard JSON. Run: MODEL_FILE=models/<name>/1/model.skops gunicorn bench.baseline_app:app
(the tutorials load a pickle; the artifact is skops now, loaded the same way once).
"""
import os

import pandas as pd
import skops.io as sio
from flask import Flask, jsonify, request

app = Flask(__name__)
model = sio.load(os.environ["MODEL_FILE"], trusted=sio.get_untrusted_types(file=os.environ["MODEL_FILE"]))


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
