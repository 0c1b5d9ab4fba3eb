"""Records and keys the tests share, defined once."""
from __future__ import annotations

RECORD = {"Pregnancies": 6, "Glucose": 148, "BloodPressure": 72, "SkinThickness": 35, "BMI": 33.6,
          "DiabetesPedigreeFunction": 0.627, "Age": 50}
COLUMNS = list(RECORD)
CSV_HEADER = ",".join(COLUMNS)
CSV_ROW = ",".join(str(v) for v in RECORD.values())
QUERY = "&".join(f"{k}={v}" for k, v in RECORD.items())
# The titanic-style model's input: categories, a gap, and a column it ignores (Name).
PASSENGER = {"Sex": "female", "Pclass": 1, "Age": None, "Fare": 80.0, "Embarked": "C", "Name": "Ann"}
# The regressor's input (scikit-learn's diabetes data, unscaled): a category and a gap.
PATIENT = {"age": 59, "sex": "female", "bmi": 32.1, "bp": None, "s1": 157, "s2": 93.2, "s3": 38, "s4": 4,
           "s5": 4.8598, "s6": 87}

KEY = "alpha-key-A1b2C3d4E5f6G7h8"
SECOND_KEY = "bravo-key-Z9y8X7w6V5u4T3s2"
WRONG_KEY = "wrong-key-Q1q2Q3q4Q5q6Q7q8"


def with_(**changes):
    """RECORD with some values changed; ``...`` removes a field."""
    record = dict(RECORD)
    for key, value in changes.items():
        if value is ...:
            record.pop(key)
        else:
            record[key] = value
    return record
ORIGIN = "https://app.example"  # an origin a browser app calls from
ADMIN_KEY = "admin-key-M1n2B3v4C5x6Z7l8"  # ADMIN_API_KEYS: the admin API's key, apart from prediction keys
