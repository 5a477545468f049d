"""Population labels as the GDI User Portal reads them, and its population filters."""

from __future__ import annotations

import pytest

from server.beacon import populations as p


@pytest.mark.parametrize(
    "term,country",
    [
        ({"id": "ISO3166-2:DK-83", "label": "Region Syddanmark"}, "DK"),
        ({"id": "ISO3166:se"}, "SE"),
        ({"id": "GAZ:00002641", "label": "England"}, "GB"),
        ({"id": "GAZ:00004018"}, "IE"),
        ({"label": "Denmark"}, "DK"),
        ({"id": "GAZ:99999999", "label": "Atlantis"}, None),
        (None, None),
    ],
)
def test_country_of(term, country):
    assert p.country_of(term) == country


def test_tag_parses_as_the_portal_does():
    assert p.tag("DK") == ("DK", None)
    assert p.tag("dk_f") == ("DK", "F")
    assert p.tag("female") == (None, "F")
    assert p.tag("M") == (None, "M")
    assert p.tag("African") is None
    assert p.tag("DK_X") is None
    assert p.tag("demo") is None


def test_split_filters_takes_only_population_ones():
    filters = [
        {"id": "sexFilter", "operator": "=", "value": "male", "scope": "population"},
        {"id": "countryFilter", "operator": "=", "value": "dk", "scope": "population"},
        {"id": "NCIT:C16576", "scope": "individual"},
    ]
    rest, wanted = p.split_filters(filters)
    assert rest == [filters[2]] and wanted == {"sex": "M", "country": "DK"}
    assert p.split_filters([{"id": "sexFilter", "value": "ALL", "scope": "population"}]) == (
        [],
        {},
    )


def test_matching_keeps_the_asked_population():
    labels = ["kg", "female", "male", "DK", "DK_F", "DK_M", "SE", "SE_F", "African"]
    keep = lambda wanted: [x for x in labels if p.matches(x, wanted)]  # noqa: E731
    assert keep({"sex": "F"}) == ["female", "DK_F", "SE_F"]
    assert keep({"country": "DK"}) == ["DK", "DK_F", "DK_M"]
    assert keep({"country": "DK", "sex": "F"}) == ["DK_F"]
    docs = [
        {
            "frequencyInPopulations": [
                {"frequencies": [{"population": x} for x in labels[:3]]},
                {"frequencies": [{"population": x} for x in labels[3:]]},
            ]
        }
    ]
    p.keep_matching(docs, {"country": "SE", "sex": "F"})
    assert docs[0]["frequencyInPopulations"] == [{"frequencies": [{"population": "SE_F"}]}]
