"""The HTTP layer: the route table, Flask blueprints, payloads and problem documents.

Built on the model core; knows nothing of the gateway in front of it. ``payloads``, ``problems``
and ``routes`` import no Flask, so the gateway's direct path shares them.
"""
