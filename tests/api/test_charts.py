"""The server-drawn SVG charts (api.admin.charts): well-formed, escaped, and to scale."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from api.admin.charts import Series, StackedBars, legend, nice_scale, share_bar, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"


def a_chart(**changes: object) -> StackedBars:
    chart = StackedBars(
        title="Flags <by> rule & week",
        categories=("1 Sep", "8 Sep", "15 Sep"),
        series=(
            Series("Staff contact", (1, 0, 3), "#332288"),
            Series('Abuse "quoted" <b>', (2, 0, 1), "#88CCEE"),
        ),
    )
    return StackedBars(**{**chart.__dict__, **changes})


def test_the_chart_is_well_formed_svg_with_every_label_escaped() -> None:
    svg = ET.fromstring(str(stacked_bars(a_chart())))
    assert svg.tag == f"{SVG}svg"
    assert svg.get("viewBox") == "0 0 360 200"
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "Flags <by> rule & week"
    assert svg.findtext(f"{SVG}title") == "Flags <by> rule & week"
    tooltips = [rect.findtext(f"{SVG}title") for rect in svg.iter(f"{SVG}rect")]
    assert '15 Sep: Abuse "quoted" <b> 1' in tooltips
    texts = [text.text for text in svg.iter(f"{SVG}text")]
    assert {"1 Sep", "8 Sep", "15 Sep"} <= set(texts)
    assert "<b>" not in str(stacked_bars(a_chart()))  # escaped, never markup


def test_bars_stack_to_scale() -> None:
    svg = ET.fromstring(str(stacked_bars(a_chart())))
    rects = list(svg.iter(f"{SVG}rect"))
    # Nothing is drawn for a 0; the third bar's two parts (3 and 1) sit on each other.
    assert len(rects) == 4
    low, high = (r for r in rects if r.findtext(f"{SVG}title", "").startswith("15 Sep"))
    assert float(low.get("height", 0)) == pytest.approx(3 * float(high.get("height", 0)))
    assert float(high.get("y", 0)) + float(high.get("height", 0)) == pytest.approx(
        float(low.get("y", 0))
    )
    assert {r.get("fill") for r in rects} == {"#332288", "#88CCEE"}


def test_an_empty_chart_says_so() -> None:
    chart = a_chart(series=(Series("Staff contact", (0, 0, 0), "#332288"),), empty="No flags")
    svg = ET.fromstring(str(stacked_bars(chart)))
    assert "No flags" in [text.text for text in svg.iter(f"{SVG}text")]
    assert list(svg.iter(f"{SVG}rect")) == []


def test_crowded_labels_are_thinned_keeping_the_latest() -> None:
    categories = tuple(f"{day} November" for day in range(1, 13))
    chart = StackedBars("t", categories, (Series("a", tuple([1] * 12), "#332288"),))
    texts = [t.text for t in ET.fromstring(str(stacked_bars(chart))).iter(f"{SVG}text")]
    shown = [label for label in categories if label in texts]
    assert shown[-1] == "12 November"
    assert 1 < len(shown) < 12


def test_a_chart_refuses_what_it_cannot_draw() -> None:
    with pytest.raises(ValueError, match="colour"):
        Series("x", (1,), "red; fill:url(javascript:1)")
    with pytest.raises(ValueError, match="0 or more"):
        Series("x", (-1,), "#332288")
    with pytest.raises(ValueError, match="one value per category"):
        a_chart(categories=("only one",))


def test_the_axis_has_round_steps() -> None:
    assert nice_scale(0) == (1, 1)
    assert nice_scale(3) == (3, 1)
    assert nice_scale(7) == (8, 2)
    assert nice_scale(23) == (25, 5)
    assert nice_scale(120) == (150, 50)


def test_legend_and_share_bar_are_escaped_and_well_formed() -> None:
    items = ET.fromstring(str(legend([Series("<i>x</i> & y", (1,), "#332288")])))
    assert items.tag == "ul"
    assert "".join(items.itertext()) == "<i>x</i> & y"
    bar = ET.fromstring(str(share_bar(3, 4)))
    assert bar.get("aria-hidden") == "true"
    assert [r.get("width") for r in bar.iter("{http://www.w3.org/2000/svg}rect")] == ["120", "90"]
    assert ET.fromstring(str(share_bar(1, 0))).find(f"{SVG}rect") is not None
