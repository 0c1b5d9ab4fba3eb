#!/usr/bin/env python3
"""A small command-line client for the sklearn-serve prediction API, built on `requests`.

    python clients/predict_client.py single                       # the README's example record
    python clients/predict_client.py single --record '{"Pregnancies": 1, "Glucose": 85, ...}'
    python clients/predict_client.py batch                        # two records, one with gaps
    python clients/predict_client.py batch --file records.json    # a JSON array of records (or an envelope)
    python clients/predict_client.py csv                          # data/test.csv
    python clients/predict_client.py csv my.csv --model pima-diabetes --version 1

Prints one line per row: its index and, for a classifier, the label and the probability of that
label, or for a regressor the value; then any warnings.
Exit codes: 0 success, 1 the service refused the request (4xx/5xx; its problem is printed),
2 bad command-line usage, 3 the service could not be reached.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import requests

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_CSV = Path(__file__).resolve().parent.parent / "data" / "test.csv"
RECORD = {"Pregnancies": 6, "Glucose": 148, "BloodPressure": 72, "SkinThickness": 35, "BMI": 33.6,
          "DiabetesPedigreeFunction": 0.627, "Age": 50}
# A second record with gaps: the model imputes BloodPressure, SkinThickness and BMI.
SECOND = {"Pregnancies": 1, "Glucose": 85, "BloodPressure": None, "SkinThickness": None, "BMI": 26.6,
          "DiabetesPedigreeFunction": 0.351, "Age": 31}


class ServiceError(Exception):
    """The service answered with an error status; the message is already formatted for people."""


def describe_problem(response: requests.Response) -> str:
    """An RFC 9457 problem+json response as readable lines (or the raw text if it is not one)."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        text = response.text.strip()[:500] or "(empty body)"
        return f"HTTP {response.status_code} {response.reason}: {text}"
    lines = [f"HTTP {response.status_code} {problem.get('title', response.reason)}: {problem.get('detail', '')}".rstrip(": ")]
    for error in problem.get("errors") or []:
        where = []
        if error.get("row") is not None:
            where.append(f"row {error['row']}")
        if error.get("field") is not None:
            where.append(error["field"])
        lines.append(f"  {', '.join(where) or 'request'}: {error.get('problem')}")
    if problem.get("request_id"):
        lines.append(f"  (request_id {problem['request_id']})")
    return "\n".join(lines)


def post(url: str, params: dict[str, str], timeout: float, **kwargs: Any) -> dict[str, Any]:
    try:
        response = requests.post(f"{url.rstrip('/')}/predict", params=params, timeout=timeout, **kwargs)
    except requests.ConnectionError as exc:
        raise ConnectionError(f"cannot reach {url}: is the service running? ({exc.__class__.__name__})") from None
    except requests.Timeout:
        raise ConnectionError(f"{url} did not answer within {timeout} s") from None
    if response.status_code >= 400:
        raise ServiceError(describe_problem(response))
    return response.json()


def print_predictions(body: dict[str, Any]) -> None:
    model = body["model"]
    predictions = body["predictions"]
    print(f"model {model['name']} version {model['version']}: {len(predictions)} prediction{'s' * (len(predictions) != 1)}")
    for index, prediction in enumerate(predictions):
        if "value" in prediction:  # a regressor
            print(f"row {index}: value={prediction['value']:.6g}")
        elif prediction["probabilities"] is None:  # a classifier without probabilities
            print(f"row {index}: label={prediction['label']}")
        else:
            label = prediction["label"]
            probability = prediction["probabilities"][str(label)]
            print(f"row {index}: label={label} probability={probability:.4f}")
        for warning in prediction["warnings"]:
            print(f"  warning: {warning}")


def load_json_argument(text: str) -> Any:
    """A JSON value given inline, or @path to read it from a file."""
    source = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        what = text[1:] if text.startswith("@") else "--record"
        raise ValueError(f"{what} is not valid JSON: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Send predictions to a sklearn-serve service and print the answers.")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the service's base URL (default {DEFAULT_URL})")
    parser.add_argument("--model", help="the model to ask (default: the service's default model)")
    parser.add_argument("--version", type=int, help="the model version to ask (default: the newest)")
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait for an answer (default 30)")
    commands = parser.add_subparsers(dest="command", required=True)

    single = commands.add_parser("single", help="predict one record (default: the README's example record)")
    single.add_argument("--record", help="the record as a JSON object, or @file.json")

    batch = commands.add_parser("batch", help="predict several records in one request")
    batch.add_argument("--file", type=Path, help="a JSON file: an array of records or an envelope such as "
                                                   '{"instances": [...]} (default: two example records)')

    csv = commands.add_parser("csv", help="predict every row of a CSV file with a header row")
    csv.add_argument("path", nargs="?", type=Path, default=DEFAULT_CSV, help=f"the CSV file (default {DEFAULT_CSV})")
    return parser


def run(arguments: argparse.Namespace) -> dict[str, Any]:
    params = {}
    if arguments.model:
        params["model"] = arguments.model
    if arguments.version is not None:
        params["version"] = str(arguments.version)
    if arguments.command == "single":
        record = load_json_argument(arguments.record) if arguments.record else RECORD
        return post(arguments.url, params, arguments.timeout, json=record)
    if arguments.command == "batch":
        records = load_json_argument(f"@{arguments.file}") if arguments.file else [RECORD, SECOND]
        return post(arguments.url, params, arguments.timeout, json=records)
    with open(arguments.path, "rb") as body:
        return post(arguments.url, params, arguments.timeout, data=body, headers={"Content-Type": "text/csv"})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        body = run(arguments)
    except ConnectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (OSError, ValueError) as exc:
        parser.error(str(exc))  # an unreadable file or invalid JSON given on the command line: exit 2
    except ServiceError as exc:
        print(f"error: the service refused the request\n{exc}", file=sys.stderr)
        return 1
    print_predictions(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
