"""Played-segment arithmetic: what a report may be credited, honestly.

Segments are [start, end] pairs of seconds. Everything here is pure, so the same report
applied twice, or an older report arriving late, gives the same answer.
"""

Segments = list[list[float]]


def clean(raw, duration: float) -> Segments:
    """Valid segments from untrusted input, clipped into [0, duration], merged and sorted."""
    result = []
    if not isinstance(raw, list):
        return result
    for item in raw[:5000]:
        if not isinstance(item, list | tuple) or len(item) != 2:
            continue
        try:
            start, end = float(item[0]), float(item[1])
        except (TypeError, ValueError):
            continue
        if start != start or end != end:  # NaN
            continue
        start, end = max(0.0, start), min(float(duration), end)
        if end > start:
            result.append([start, end])
    return merge(result)


def merge(segments) -> Segments:
    """Union of segments as a sorted list of disjoint [start, end] pairs."""
    merged: Segments = []
    for start, end in sorted(segments):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def total(segments) -> float:
    return sum(end - start for start, end in segments)


def subtract(segments, taken) -> Segments:
    """The parts of ``segments`` not covered by ``taken`` (both merged)."""
    result = []
    for start, end in segments:
        cursor = start
        for t_start, t_end in taken:
            if t_end <= cursor or t_start >= end:
                continue
            if t_start > cursor:
                result.append([cursor, t_start])
            cursor = max(cursor, t_end)
            if cursor >= end:
                break
        if cursor < end:
            result.append([cursor, end])
    return result


def credit(current, claimed, budget: float) -> Segments:
    """``current`` plus at most ``budget`` seconds of ``claimed`` that it does not hold yet.

    New pieces are taken in playback order (by start), the last one cut short when the budget
    runs out. Seconds already in ``current`` cost nothing, and the result always contains
    ``current``, so late or repeated reports never take anything back.
    """
    added = []
    for start, end in subtract(claimed, current):
        if budget <= 0:
            break
        take = min(end - start, budget)
        added.append([start, start + take])
        budget -= take
    return merge([*current, *added])
