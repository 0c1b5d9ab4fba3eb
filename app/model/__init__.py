"""The model core: artifacts, registry, input contract and decoding, compiled backend, predict
and encode, training. Imports no Flask or Werkzeug and raises plain exceptions (errors.py), so
the service, the command-line tools and batch scoring all use it alike."""
