"""The before/after protocol reads the table `python -m bench` prints and takes medians per figure."""

from __future__ import annotations

from bench.common import Row
from bench.compare import median_table, parse_rows
from bench.report import table_text


def printed(p50: float, alerts: float) -> str:
    return table_text([Row("3. alert -> first Slack message (p50)", p50, "ms", baseline=1161.0,
                           baseline_what="ansible-rulebook"),
                       Row("4. webhook ingestion, accepted alerts/s", alerts, "alerts/s", lower_is_better=False)])


def test_the_printed_table_is_read_back_by_figure() -> None:
    assert parse_rows(printed(11.3, 6130)) == {"3. alert -> first Slack message (p50)": (11.3, "ms"),
                                              "4. webhook ingestion, accepted alerts/s": (6130.0, "alerts/s")}


def test_medians_of_each_side_and_the_change() -> None:
    before = [parse_rows(printed(p50, 5000)) for p50 in (9.7, 9.8, 10.9)]
    after = [parse_rows(printed(p50, 6000)) for p50 in (11.3, 11.5, 12.0)]
    table = median_table(before, after, ("b9b21a8", "main")).splitlines()
    assert table[2] == ("| 3. alert -> first Slack message (p50) | 9.8 ms (9.7, 9.8, 10.9) | 11.5 ms (11.3, 11.5, 12)"
                        " | +17% |")
    assert table[3].endswith("| +20% |")


def test_a_figure_one_side_lacks_is_left_out() -> None:
    before = [parse_rows(printed(9.8, 5000))]
    after = [{k: v for k, v in parse_rows(printed(11.5, 6000)).items() if k.startswith("3.")}]
    assert len(median_table(before, after, ("a", "b")).splitlines()) == 3
