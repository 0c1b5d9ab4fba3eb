"""Display names for a classifier's classes: "1" -> "diabetes", for people, on the page.

The API keeps answering the raw labels; the names travel in the version's metadata
(``class_names``, keyed by the label as text), given at training (``--class-names``, or a
``"classes"`` entry for the target in ``--columns``) or at import. One parser and one check, so
train.py, manage.py and the admin API's jobs refuse the same mistakes in the same words.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

MAX_NAME_LENGTH = 100


def parse_class_names(text: str) -> dict[str, str]:
    """``0=no diabetes,1=diabetes`` (or a JSON object) -> {"0": "no diabetes", "1": "diabetes"}; ValueError."""
    text = text.strip()
    if text.startswith("{"):
        try:
            given = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"class names are not a readable JSON object ({exc.msg})") from None
        if not isinstance(given, dict):
            raise ValueError("class names must be a JSON object of label: name")
        return {str(label): name for label, name in given.items()}
    names: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        label, equals, name = part.partition("=")
        if not equals or not label.strip():
            raise ValueError(f"give class names as LABEL=NAME pairs separated by commas, like 0=no diabetes,1=diabetes; "
                             f"got {part[:40]!r}")
        if label.strip() in names:
            raise ValueError(f"class {label.strip()!r} is named twice")
        names[label.strip()] = name.strip()
    if not names:
        raise ValueError("no class names given")
    return names


def check_class_names(names: Mapping[str, Any] | None, classes: Sequence[Any], task: str) -> dict[str, str] | None:
    """The names, checked against the model's classes; ValueError naming what is wrong."""
    if not names:
        return None
    if task != "classification":
        raise ValueError("class names are for classifiers; this model is a regressor")
    known = {str(c): c for c in classes}
    unknown = [label for label in names if label not in known]
    if unknown:
        raise ValueError(f"class names name classes the model does not have: {', '.join(map(repr, unknown))}; "
                         f"its classes are: {', '.join(known)}")
    for label, name in names.items():
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"the name of class {label!r} must be text of 1 to {MAX_NAME_LENGTH} characters")
    return {label: names[label].strip() for label in known if label in names}
