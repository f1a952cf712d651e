import pytest

from courses.segments import clean, credit, merge, subtract, total


def test_clean_clips_merges_and_drops_nonsense():
    raw = [[5, 10], [8, 12], [-3, 1], [95, 200], [7, 7], ["x", 3], [3], None, [float("nan"), 4]]
    assert clean(raw, duration=100) == [[0.0, 1.0], [5.0, 12.0], [95.0, 100.0]]
    assert clean("not a list", 100) == []


def test_merge_and_total():
    assert merge([[10, 20], [0, 5], [5, 7], [19, 25]]) == [[0, 7], [10, 25]]
    assert total([[0, 7], [10, 25]]) == 22


def test_subtract():
    assert subtract([[0, 10]], [[2, 3], [5, 6]]) == [[0, 2], [3, 5], [6, 10]]
    assert subtract([[0, 10]], [[0, 10]]) == []
    assert subtract([[0, 10]], []) == [[0, 10]]


def test_credit_is_limited_by_the_budget_in_playback_order():
    assert credit([], [[0, 30], [50, 70]], budget=40) == [[0, 30], [50, 60]]


def test_credit_never_takes_back_and_is_idempotent():
    first = credit([], [[0, 10]], budget=12)
    again = credit(first, [[0, 10]], budget=12)
    late_and_older = credit(again, [[0, 5]], budget=30)
    assert first == again == late_and_older == [[0, 10]]


def test_credit_counts_what_was_credited_before_as_free():
    # Re-watching credited parts costs nothing; only new seconds use the budget.
    assert credit([[0, 60]], [[0, 60], [60, 80]], budget=10) == [[0, 70]]


@pytest.mark.parametrize("budget", [0, -5])
def test_no_budget_no_credit(budget):
    assert credit([[0, 5]], [[5, 50]], budget) == [[0, 5]]
