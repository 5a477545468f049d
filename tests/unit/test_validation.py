"""Compiled parameter validation reports what Connexion's own validator reports."""

from __future__ import annotations

from connexion.validators import ParameterValidator

from server.validation import CachedParameterValidator, _validator_for

PARAMS = [
    {"name": "start", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["BAM", "CRAM"]}},
    {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 4}},
    {"name": "maybe", "in": "query", "schema": {"type": "string", "nullable": True}},
]


def test_same_answers_as_connexion():
    cases = [("query", 5, PARAMS[0]), ("query", -1, PARAMS[0]), ("query", "x", PARAMS[0]),
             ("query", "BAM", PARAMS[1]), ("query", "SAM", PARAMS[1]), ("path", "abcde", PARAMS[2]),
             ("path", None, PARAMS[2]), ("query", None, PARAMS[3]), ("query", None, PARAMS[0])]
    ours = CachedParameterValidator(PARAMS, uri_parser=None)
    for kind, value, param in cases:
        assert ours.validate_parameter(kind, value, param) == \
            ParameterValidator.validate_parameter(kind, value, param), (kind, value, param)


def test_one_validator_per_definition():
    assert _validator_for(PARAMS[0]) is _validator_for(PARAMS[0])
    copy = dict(PARAMS[0])
    assert _validator_for(copy) is not _validator_for(PARAMS[0])


def test_htsget_rejects_an_invalid_parameter_through_the_app(client):
    resp = client.get("/reads/x", params={"start": "not-a-number"})
    assert resp.status_code == 400
    assert resp.json()["htsget"]["error"] == "InvalidInput"
