"""The parameter guard reports what Connexion's own validator reports and bounds
integers; request bodies are bounded; database outages are told apart from other errors."""

from __future__ import annotations

import pytest
from connexion.validators import ParameterValidator

from server import errors
from server.web.validation import (
    INT64_MAX,
    INT64_MIN,
    MAX_JSON_DEPTH,
    Int64ParameterValidator,
    json_depth_exceeds,
    parse_json_body,
)

PARAMS = [
    {"name": "start", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["BAM", "CRAM"]}},
    {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 4}},
    {"name": "maybe", "in": "query", "schema": {"type": "string", "nullable": True}},
]


def test_same_answers_as_connexion():
    cases = [
        ("query", 5, PARAMS[0]),
        ("query", -1, PARAMS[0]),
        ("query", "x", PARAMS[0]),
        ("query", "BAM", PARAMS[1]),
        ("query", "SAM", PARAMS[1]),
        ("path", "abcde", PARAMS[2]),
        ("path", None, PARAMS[2]),
        ("query", None, PARAMS[3]),
        ("query", None, PARAMS[0]),
        ("query", -1, dict(PARAMS[0])),  # not one of the operation's own: Connexion's path
    ]
    ours = Int64ParameterValidator(PARAMS, uri_parser=None)
    for kind, value, param in cases:
        assert ours.validate_parameter(kind, value, param) == ParameterValidator.validate_parameter(
            kind, value, param
        ), (kind, value, param)


def test_htsget_rejects_an_invalid_parameter_through_the_app(client):
    resp = client.get("/reads/x", params={"start": "not-a-number"})
    assert resp.status_code == 400
    assert resp.json()["htsget"]["error"] == "InvalidInput"


# ---------------------------------------------------------------- bodies and limits
def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_depth_limit_is_exact():
    assert parse_json_body(nested(MAX_JSON_DEPTH)) is not None
    with pytest.raises(errors.InvalidInput, match="deeper than"):
        parse_json_body(nested(MAX_JSON_DEPTH + 1))
    assert not json_depth_exceeds({"a": [{"b": 1}]}, limit=3)
    assert json_depth_exceeds({"a": [{"b": []}]}, limit=3)


def test_int64_range_is_exact():
    assert parse_json_body(f"[{INT64_MAX}, {INT64_MIN}]".encode()) == [INT64_MAX, INT64_MIN]
    for value in (INT64_MAX + 1, INT64_MIN - 1, 10**30):
        with pytest.raises(errors.InvalidInput, match="64-bit"):
            parse_json_body(f"[{value}]".encode())


@pytest.mark.parametrize(
    "raw", [b"\xff", b"[1,", b"NaN", b"[Infinity]", b"[1e999]", nested(200_000)]
)
def test_malformed_bodies_are_invalid_input(raw):
    with pytest.raises(errors.InvalidInput):
        parse_json_body(raw)


def test_integer_parameter_outside_int64_is_reported():
    ours = Int64ParameterValidator(PARAMS, uri_parser=None)
    assert "64-bit" in ours.validate_parameter("query", INT64_MAX + 1, PARAMS[0])
    assert ours.validate_parameter("query", INT64_MAX, PARAMS[0]) is None
    # Connexion's own validator lets it through (the guard is ours)
    assert ParameterValidator.validate_parameter("query", INT64_MAX + 1, PARAMS[0]) is None


def test_database_outage_errors_are_classified():
    import sqlite3

    import psycopg
    import sqlalchemy.exc as sa_exc

    from server.web.errors import as_service_error, database_unavailable

    refused = psycopg.OperationalError("connection refused")
    assert database_unavailable(refused)
    assert database_unavailable(sa_exc.OperationalError("SELECT 1", {}, refused))
    assert database_unavailable(sa_exc.TimeoutError("QueuePool limit reached"))
    assert database_unavailable(sqlite3.OperationalError("database is locked"))
    assert not database_unavailable(sqlite3.OperationalError("no such table: x"))
    assert not database_unavailable(psycopg.errors.UniqueViolation("duplicate key"))
    assert not database_unavailable(ValueError("x"))
    err = as_service_error(sa_exc.OperationalError("SELECT 1", {}, refused))
    assert isinstance(err, errors.ServiceUnavailable) and err.status == 503 and err.retry_after > 0
