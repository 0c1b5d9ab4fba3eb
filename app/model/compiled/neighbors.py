"""k-nearest neighbours."""
from __future__ import annotations
