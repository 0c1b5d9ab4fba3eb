"""Decoding rows: the bulk decoder and the per-value decoder apply the same rules."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model.decoding import SMALL_BATCH, Decoder
from app.model.errors import InvalidInput
from app.model.rules import FINITE_NUMBER, MAX_MAGNITUDE, outside, outside_in
from tests.datasets import pima_schema

EDGE_VALUES = [0.0, -0.0, 1.0, -1.5, MAX_MAGNITUDE, -MAX_MAGNITUDE, math.nextafter(MAX_MAGNITUDE, math.inf),
               1e300, -1e300, 1.7976931348623157e308, math.inf, -math.inf, math.nan, 5e-324]


def test_the_number_rule_says_the_same_of_one_value_and_of_a_matrix():
    one_at_a_time = [FINITE_NUMBER.accepts(x) for x in EDGE_VALUES]
    at_once = FINITE_NUMBER.accepts_in(np.array(EDGE_VALUES)).tolist()
    assert one_at_a_time == at_once
    assert True in one_at_a_time and False in one_at_a_time  # the edge values exercise both answers


@pytest.mark.parametrize("value, words", [(math.nan, "finite number, got NaN"), (-math.inf, "finite number, got -Infinity"),
                                          (2e15, "between -1e15 and 1e15, got 2e+15")])
def test_a_refused_number_is_told_why(value, words):
    assert not FINITE_NUMBER.accepts(value) and words in FINITE_NUMBER.message(value, value)


def test_the_range_check_says_the_same_of_one_value_and_of_a_matrix():
    low, high = 2.0, 5.0
    values = [1.999, 2.0, 3.5, 5.0, 5.001, -math.inf, math.inf]
    assert [outside(x, low, high) for x in values] == outside_in(np.array(values), low, high).tolist()
    assert not outside(1.0, math.nan, math.nan) and not outside_in(np.array([1.0]), math.nan, math.nan)[0]


PIMA_VALUES = {
    "Pregnancies": st.one_of(st.integers(-5, 20), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3)),
    "Glucose": st.one_of(st.integers(0, 300), st.none(), st.booleans()),
    "BloodPressure": st.one_of(st.floats(0, 200), st.none()),
    "SkinThickness": st.one_of(st.integers(0, 100), st.none()),
    "BMI": st.one_of(st.floats(10, 70), st.none(), st.just(float("nan"))),
    "DiabetesPedigreeFunction": st.one_of(st.floats(0, 3), st.integers(-10**20, 10**20)),
    "Age": st.integers(0, 120),
}
# Mostly valid rows, so the large batches are often wholly valid and the matrix checks run.
VALID_PIMA_VALUES = {
    "Pregnancies": st.integers(0, 20), "Glucose": st.integers(40, 250), "BloodPressure": st.one_of(st.floats(0, 200), st.none()),
    "SkinThickness": st.one_of(st.integers(0, 100), st.none()), "BMI": st.one_of(st.floats(10, 70), st.none()),
    "DiabetesPedigreeFunction": st.floats(0, 3), "Age": st.integers(0, 120),
}


def assert_bulk_declines_or_agrees(rows):
    decoder = Decoder(pima_schema())
    bulk = decoder.bulk.records(rows)
    try:
        careful = decoder.records(rows, bulk=False)
    except InvalidInput:
        assert bulk is None
        return
    if bulk is not None:
        assert np.array_equal(bulk.matrix, careful.matrix, equal_nan=True)
        assert bulk.warnings == careful.warnings


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries(PIMA_VALUES), min_size=1, max_size=SMALL_BATCH))
def test_property_bulk_and_per_value_decoding_agree_on_small_batches(rows):
    """The bulk decoder either declines or gives exactly what the per-value decoder gives."""
    assert_bulk_declines_or_agrees(rows)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries(VALID_PIMA_VALUES), min_size=SMALL_BATCH + 1, max_size=60),
       damage=st.one_of(st.none(), st.tuples(st.integers(0, 59), st.sampled_from(list(PIMA_VALUES)),
                                             st.sampled_from([math.nan, math.inf, 2e15, None, "7", True]))))
def test_property_bulk_and_per_value_decoding_agree_on_large_batches(rows, damage):
    """The same on batches the bulk decoder checks as a matrix, with at most one bad value."""
    if damage is not None:
        row, field, value = damage
        rows[row % len(rows)][field] = value
    assert_bulk_declines_or_agrees(rows)


def test_a_category_coded_zero_is_not_mistaken_for_a_refusal():
    from app.model.contract import CATEGORY, NUMBER, Feature, Schema

    schema = Schema((Feature("colour", CATEGORY, False, categories=("blue", "red")),
                     Feature("size", NUMBER, False, minimum=0, maximum=9)))
    decoded = Decoder(schema).bulk.records([{"colour": "blue", "size": 1}])
    assert decoded is not None and decoded.matrix.tolist() == [[0.0, 1.0]]
