"""Request parsing: every rule of the htsget 1.3 parameters, without a server."""

from __future__ import annotations

import pytest

from server.errors import InvalidInput, InvalidRange, UnsupportedFormat
from server.genomics.slices import Region
from server.htsget.service import parse_get, parse_post


def test_get_defaults_to_whole_file():
    req = parse_get("reads", "x", {})
    assert req.regions is None and req.format is None and req.class_ is None


def test_get_region_and_case_insensitive_format():
    req = parse_get(
        "reads", "x", {"format": "cRaM", "referenceName": "1", "start": "5", "end": "9"}
    )
    assert req.format == "CRAM" and req.regions == [Region("1", 5, 9)]


def test_get_start_equal_end_is_an_empty_region():
    assert parse_get("reads", "x", {"referenceName": "1", "start": 5, "end": 5}).regions == [
        Region("1", 5, 5)
    ]


@pytest.mark.parametrize(
    "params,exc",
    [
        ({"format": "VCF"}, UnsupportedFormat),
        ({"format": "SAM"}, UnsupportedFormat),
        ({"class": "tail"}, InvalidInput),
        ({"class": "header", "referenceName": "1"}, InvalidInput),
        ({"start": "1"}, InvalidInput),
        ({"referenceName": "1", "start": "9", "end": "5"}, InvalidRange),
        ({"referenceName": "1", "start": "-1"}, InvalidRange),
        ({"referenceName": "1", "start": "abc"}, InvalidInput),
        ({"referenceName": "*", "start": "1"}, InvalidInput),
        ({"fields": "QNAME,BOGUS"}, InvalidInput),
        ({"tags": "NM,MD", "notags": "MD"}, InvalidInput),
        ({"tags": "TOOLONG"}, InvalidInput),
    ],
)
def test_get_rejects(params, exc):
    with pytest.raises(exc):
        parse_get("reads", "x", params)


def test_get_ignores_unknown_parameters():
    assert parse_get("variants", "x", {"encryptionScheme": "c4gh", "foo": "bar"}).regions is None


def test_post_regions_in_order():
    req = parse_post(
        "variants",
        "x",
        b'{"format":"bcf","regions":[{"referenceName":"2"},'
        b'{"referenceName":"1","start":0,"end":10}]}',
    )
    assert req.format == "BCF" and req.regions == [Region("2"), Region("1", 0, 10)]


@pytest.mark.parametrize(
    "body,exc",
    [
        (b"{not json", InvalidInput),
        (b"[]", InvalidInput),
        (b'{"regions": []}', InvalidInput),
        (b'{"regions": [{"start": 1}]}', InvalidInput),
        (b'{"regions": [{"referenceName": "1", "start": 5, "end": 5}]}', InvalidRange),
        (b'{"regions": [{"referenceName": "1", "start": 6, "end": 5}]}', InvalidRange),
        (b'{"class": "header", "regions": [{"referenceName": "1"}]}', InvalidInput),
        (b'{"tags": ["NM"], "notags": ["NM"]}', InvalidInput),
        (b'{"fields": "QNAME"}', InvalidInput),
    ],
)
def test_post_rejects(body, exc):
    with pytest.raises(exc):
        parse_post("reads", "x", body)


def test_post_with_query_parameters_is_invalid():
    with pytest.raises(InvalidInput):
        parse_post("reads", "x", b"{}", {"format": "BAM"})


def test_post_empty_body_is_whole_file():
    assert parse_post("reads", "x", b"").regions is None
