"""Range parsing and the data plane's table of kinds."""

from __future__ import annotations

import pytest

from server.errors import RangeNotSatisfiable
from server.web import dataplane


@pytest.mark.parametrize(
    "header,expected",
    [
        ("bytes=0-9", (0, 10)),
        ("bytes=5-", (5, 100)),
        ("bytes=-10", (90, 100)),
        ("bytes=90-500", (90, 100)),
        ("bytes=0-0", (0, 1)),
        ("items=0-9", None),
        ("bytes=0-1,5-6", None),
        ("bytes=9-3", None),
        ("", None),
    ],
)
def test_parse_range(header, expected):
    assert dataplane.parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=250-300", "bytes=-0"])
def test_unsatisfiable_range(header):
    with pytest.raises(RangeNotSatisfiable):
        dataplane.parse_range(header, 100)


def test_every_resolver_kind_is_a_valid_url_kind():
    from server.auth.urls import check_kind

    for kind in dataplane.RESOLVERS:
        check_kind(kind)
    with pytest.raises(ValueError):
        check_kind("../x")
