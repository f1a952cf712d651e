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


@pytest.mark.parametrize("bad", [["x", 3], [3], None, [float("nan"), 4], [1, 2, 3]])
def test_a_malformed_piece_is_skipped_and_the_rest_still_counts(bad):
    assert clean([[0, 5], bad, [10, 20]], duration=100) == [[0.0, 5.0], [10.0, 20.0]]


def test_clean_reads_the_first_5000_pieces_only():
    pieces = [[i * 2, i * 2 + 1] for i in range(5001)]
    cleaned = clean(pieces, duration=20000)
    assert len(cleaned) == 5000 and cleaned[-1] == [9998.0, 9999.0]


def test_subtract_leaves_what_lies_beside_the_taken_pieces_alone():
    # Taken pieces wholly before or after a segment take nothing from it, and a piece after
    # never stretches it.
    assert subtract([[0, 10]], [[20, 30]]) == [[0, 10]]
    assert subtract([[10, 20]], [[0, 5], [12, 15]]) == [[10, 12], [15, 20]]
    assert subtract([[10, 20], [40, 50]], [[0, 5], [45, 60]]) == [[10, 20], [40, 45]]


def test_credit_spends_the_budget_only_on_seconds_not_held_yet():
    # 5 seconds of budget: [10, 12] and then [15, 18] are new; [12, 15] is held already.
    assert credit([[0, 5], [12, 15]], [[10, 20]], budget=5) == [[0, 5], [10, 18]]
    # A claim before a held piece never credits the gap up to it.
    assert credit([[20, 30]], [[0, 10]], budget=100) == [[0, 10], [20, 30]]
