"""The server-drawn SVG charts: well-formed XML, accessible, and every label escaped."""

import xml.etree.ElementTree as ET

import pytest

from server.web.charts import FunnelRow, bar_svg, funnel_svg

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert(1)</script> & "quoted"'


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything that is not well-formed XML


def texts(root) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter(f"{SVG}text")]


def test_funnel_is_accessible_svg_with_a_bar_and_number_per_stage():
    root = parse(funnel_svg([("identified", 40, "/children?stage=identified", "demobilisation"),
                             ("registered", 25, None, "demobilisation"),
                             FunnelRow("assessed", 10, group="trauma_support")]))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Children per phase and stage"
    assert root.find(f"{SVG}title").text == "Children per phase and stage"
    assert "identified: 40" in root.find(f"{SVG}desc").text
    assert len(list(root.iter(f"{SVG}rect"))) == 3
    labels = texts(root)
    assert {"identified", "registered", "assessed", "40", "25", "10"} <= set(labels)
    assert {"demobilisation", "trauma support"} <= set(labels)  # each phase named once
    links = list(root.iter(f"{SVG}a"))
    assert [a.get("href") for a in links] == ["/children?stage=identified"]


def test_funnel_bar_lengths_follow_the_counts():
    root = parse(funnel_svg([("a", 40), ("b", 10), ("c", 0)]))
    widths = [float(r.get("width")) for r in root.iter(f"{SVG}rect")]
    assert widths[0] == pytest.approx(4 * widths[1])
    assert widths[2] == 0


def test_funnel_escapes_labels_links_and_title():
    svg = funnel_svg([(HOSTILE, 3, '/x?a=1&b="2"', HOSTILE)], title=HOSTILE)
    assert "<script>" not in svg
    root = parse(svg)
    assert root.get("aria-label") == HOSTILE
    assert root.find(f"{SVG}title").text == HOSTILE
    assert HOSTILE in texts(root)
    assert next(root.iter(f"{SVG}a")).get("href") == '/x?a=1&b="2"'


def test_funnel_with_no_rows_is_still_valid():
    root = parse(funnel_svg([]))
    assert root.find(f"{SVG}desc").text == "No data."


def test_grouped_bars_one_per_series_and_category_with_legend():
    root = parse(bar_svg(["Kitgum", "Gulu"], [("female", [10, 20]), ("male", [30, 0])], title="By sex"))
    rects = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(rects) == 3  # the zero draws no bar
    heights = {r.find(f"{SVG}title").text: float(r.get("height")) for r in rects}
    assert heights["Gulu, female: 20"] == pytest.approx(2 * heights["Kitgum, female: 10"], abs=0.2)
    labels = texts(root)
    assert {"Kitgum", "Gulu", "female", "male", "10", "20", "30", "0"} <= set(labels)


def test_suppressed_values_draw_no_bar_but_show_their_text():
    root = parse(bar_svg(["Kitgum", "Gulu"], [("n", [12, "<5"])], title="Children"))
    rects = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert [r.find(f"{SVG}title").text for r in rects] == ["Kitgum, n: 12"]
    assert "<5" in texts(root)
    assert "&lt;5" in bar_svg(["a"], [("n", ["<5"])], title="t")


def test_stacked_bars_stack_and_label_the_total():
    root = parse(bar_svg(["Kitgum"], [("female", [6]), ("male", [9]), ("other", ["<5"])],
                         title="Stacked", stacked=True))
    rects = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(rects) == 2
    assert "15 + <5" in texts(root)


def test_bar_chart_escapes_categories_series_and_links():
    svg = bar_svg([HOSTILE], [(HOSTILE, [7])], title=HOSTILE, hrefs=["/r?a=1&b=2"])
    assert "<script>" not in svg
    root = parse(svg)
    assert root.get("aria-label") == HOSTILE
    assert HOSTILE in texts(root)
    assert next(root.iter(f"{SVG}a")).get("href") == "/r?a=1&b=2"


def test_bar_chart_refuses_series_of_the_wrong_length():
    with pytest.raises(ValueError, match="2 values for 1 categories"):
        bar_svg(["a"], [("n", [1, 2])], title="t")


def test_a_chart_of_only_suppressed_cells_labels_no_scale():
    root = parse(bar_svg(["a", "b"], [("n", ["<5", 0])], title="t"))
    assert not [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert "1" not in texts(root)  # no made-up maximum on the axis
    assert {"<5", "0"} <= set(texts(root))
