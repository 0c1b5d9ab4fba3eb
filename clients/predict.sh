#!/usr/bin/env bash
# Predictions with curl against a sklearn-serve service.
#
#   clients/predict.sh                 single, batch and CSV, one after the other
#   clients/predict.sh single [JSON]   one record, inline or @file.json (default: the README's example record)
#   clients/predict.sh batch           two records, one with gaps (null)
#   clients/predict.sh csv [FILE]      every row of a CSV with a header row (default: data/test.csv)
#
# BASE_URL (default http://127.0.0.1:8000) is the service; MODEL and VERSION, if set, choose the model.
# Each answer is printed as one line of JSON. An error response (4xx/5xx) is printed as it came
# (application/problem+json) and the script stops with curl's exit code 22.
set -euo pipefail

BASE_URL="${BASE_URL:-http://127.0.0.1:8000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RECORD='{"Pregnancies": 6, "Glucose": 148, "BloodPressure": 72, "SkinThickness": 35, "BMI": 33.6,
         "DiabetesPedigreeFunction": 0.627, "Age": 50}'
GAPS='{"Pregnancies": 1, "Glucose": 85, "BloodPressure": null, "SkinThickness": null, "BMI": 26.6,
       "DiabetesPedigreeFunction": 0.351, "Age": 31}'

query=""
if [[ -n "${MODEL:-}" ]]; then query+="${query:+&}model=${MODEL}"; fi
if [[ -n "${VERSION:-}" ]]; then query+="${query:+&}version=${VERSION}"; fi

# post CONTENT_TYPE CURL_DATA_ARGUMENT: POST /predict, print the answer (the service ends every
# body with a newline), fail on an error status.
post() {
    curl --silent --show-error --fail-with-body --max-time 60 \
        -X POST "${BASE_URL%/}/predict${query:+?$query}" \
        -H "Content-Type: $1" --data-binary "$2"
}

single() { echo "== one record" >&2; post application/json "${1:-$RECORD}"; }
batch()  { echo "== a batch of two records" >&2; post application/json "[$RECORD, $GAPS]"; }
csv() {
    local file="${1:-$ROOT/data/test.csv}"
    [[ -r "$file" ]] || { echo "error: cannot read $file" >&2; exit 2; }
    echo "== every row of $file" >&2
    post text/csv "@$file"
}

case "${1:-all}" in
    single) single "${2:-}" ;;
    batch) batch ;;
    csv) csv "${2:-}" ;;
    all) single; batch; csv ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) echo "usage: $0 [single [JSON] | batch | csv [FILE] | all]" >&2; exit 2 ;;
esac
