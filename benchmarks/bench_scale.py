"""Benchmark 5 — scale: does the per-task cost grow with N faster than the baseline's?

Derived from the overhead benchmark's figures (same process, same rounds): for each loop
and K, growth = per-task cost at the largest N / per-task cost at the smallest N, for the
library and for baseline (a). Some growth is normal on CPython (a bigger heap, more
garbage-collector work, colder caches); the question is only whether the library adds to
it. Target (docs/design.md): library growth <= baseline growth x 1.2, i.e. ratio <= 1.2.
"""

from __future__ import annotations

from ._harness import Row, median, ratio

TARGET = 1.2


def derive(overhead_rows: list[Row]) -> list[Row]:
    """Scale rows from the overhead rows of every loop and K (smallest vs largest N)."""
    rows = []
    groups: dict[tuple[str, int], list[Row]] = {}
    for row in overhead_rows:
        groups.setdefault((row.loop, row.detail["workers"]), []).append(row)
    for (loop, workers), found in groups.items():
        if len(found) < 2:
            continue
        found.sort(key=lambda r: r.detail["n"])
        small, large = found[0], found[-1]
        paired = _paired_growth_ratios(small, large)
        lib_growth = ratio(large.library, small.library)
        base_growth = ratio(large.baseline, small.baseline)
        rows.append(
            Row(
                benchmark="scale",
                size=f"N={large.detail['n']:,}/{small.detail['n']:,} K={workers}",
                loop=loop,
                unit="x",
                library=lib_growth,
                baseline=base_growth,
                baseline_name="pool (a) growth",
                ratio=median(paired) if paired else ratio(lib_growth, base_growth),
                target=TARGET,
                detail={
                    "small_n": small.detail["n"],
                    "large_n": large.detail["n"],
                    "library_s_per_task": [small.library, large.library],
                    "baseline_s_per_task": [small.baseline, large.baseline],
                    "paired_round_ratios": paired,
                    "ratio_of_medians": ratio(lib_growth, base_growth),
                },
            )
        )
    return rows


def _paired_growth_ratios(small: Row, large: Row) -> list[float]:
    """Per round r: (library large_r / small_r) / (baseline large_r / small_r).

    The sizes run in the same rounds, so round r of each was measured in the same stretch
    of time; the median of these (the row's ratio) is less sensitive to a slow minute than
    the ratio of the two median growths.
    """
    a = small.detail.get("samples_s_per_task", {})
    b = large.detail.get("samples_s_per_task", {})
    if "library" not in a or "library" not in b:
        return []
    rounds = zip(a["library"], b["library"], a["pool (a)"], b["pool (a)"], strict=True)
    return [(ls / lb_small) / (bl / bs) for lb_small, ls, bs, bl in rounds]
