"""Batch recording gives the very histogram one record_value per value would."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ppipe_stream.scoring.hist import MAX_US, new_histogram, quantiles_ms, record_many


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-5, 2 * MAX_US), min_size=1, max_size=2000))
def test_record_many_equals_one_by_one(values):
    one, many = new_histogram(), new_histogram()
    for value in values:
        one.record_value(min(max(value, 1), MAX_US))
    record_many(many, values)
    assert list(one.counts) == list(many.counts)
    assert one.get_max_value() == many.get_max_value() and one.get_min_value() == many.get_min_value()
    assert quantiles_ms(one) == quantiles_ms(many)
