"""Batch scoring: a file of rows in, a file of predictions out, by the same model core as the API.

``manage.py score`` picks an engine: ``local`` streams the file through one process (local.py),
``spark`` spreads it over a Spark cluster (spark.py). Both decode with app/model/tables.py, predict
with app/model/predict.py and lay out the answers with results.py, so a row gets what
``POST /predict`` answers for it.
"""
