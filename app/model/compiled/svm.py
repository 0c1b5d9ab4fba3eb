"""Support vector machines (kernel SVC and SVR)."""
from __future__ import annotations
