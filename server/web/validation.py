"""Guards on request parameters and bodies, run by Connexion's validation.

Integer parameters must fit in a signed 64-bit integer (the widest integer
any API stores or compares): ``Int64ParameterValidator`` reports one outside
that range as a 400 before the parameter's schema is checked.

The request-body validators are Connexion's own, with parsing that turns
every malformed body into a 400 in the API's error shape instead of an
exception: JSON that is not valid in its declared charset, nests deeper than
``MAX_JSON_DEPTH`` or holds integers outside int64 (``parse_json_body``), and
form or multipart bodies that cannot be parsed (no boundary, truncated parts).
A NUL character in a JSON string or a form text field is a 400 too.

``VALIDATOR_MAP`` hands Connexion these validators.
"""

from __future__ import annotations

import functools
import json
import logging
import math

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem
from connexion.uri_parsing import OpenAPIURIParser
from connexion.utils import is_null, is_nullable
from connexion.validators import (
    FormDataValidator,
    JSONRequestBodyValidator,
    MultiPartFormDataValidator,
    ParameterValidator,
)
from jsonschema import Draft4Validator, ValidationError
from starlette.formparsers import MultiPartException

logger = logging.getLogger(__name__)
FORMATS = Draft4Validator.FORMAT_CHECKER  # the format checks Connexion's own validator uses

# A JSON body may nest at most this deep, and its integers must fit in a signed
# 64-bit integer (the widest integer any API stores or compares). Deeper
# documents or wider numbers are a 400 before any handler or JSON-schema
# validation sees them (both recurse per level; an unbounded depth ends in
# RecursionError, an unbounded integer in a database overflow).
MAX_JSON_DEPTH = 32
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def _outside_int64(value) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not INT64_MIN <= value <= INT64_MAX
    )


class Int64ParameterValidator(ParameterValidator):
    """Connexion's ``ParameterValidator``; integers must also fit in int64.

    Connexion builds one parameter validator per request, and its
    ``validate_parameter`` builds a JSON-schema validator, from a deep copy
    of the schema, for every parameter the request carries: the largest cost
    of a Beacon query or an htsget ticket after the HTTP parsing. Here each
    parameter's JSON-schema validator is built the first time a request
    carries it and kept (``_schema_validator``; the documents' parameters
    live as long as the app). The checks and their messages are Connexion's.
    """

    def validate_parameter(self, parameter_type, value, param, param_name=None):
        values = value if isinstance(value, list) else [value]
        if not (is_nullable(param) and is_null(value)) and any(map(_outside_int64, values)):
            return f"{param_name or param.get('name')}: integer outside the signed 64-bit range"
        return self.check_schema(parameter_type, value, param, param_name)

    @staticmethod
    def check_schema(parameter_type, value, param, param_name=None):
        """The parameter's own schema, as Connexion checks it."""
        if is_nullable(param) and is_null(value):
            return None
        if value is None:
            if param.get("required"):
                return f"Missing {parameter_type} parameter '{param['name']}'"
            return None
        try:
            _schema_validator(param).validate(value)
        except ValidationError as exc:
            return str(exc)
        return None


# id(param) -> (param, its validator); the param is kept so its id is never reused
_VALIDATORS: dict[int, tuple[dict, Draft4Validator]] = {}


def _schema_validator(param: dict) -> Draft4Validator:
    known = _VALIDATORS.get(id(param))
    if known is None or known[0] is not param:
        known = (param, Draft4Validator(param.get("schema", param), format_checker=FORMATS))
        if len(_VALIDATORS) < 10_000:  # the documents' parameters; never unbounded
            _VALIDATORS[id(param)] = known
    return known[1]


class URIParser(OpenAPIURIParser):
    """Connexion's OpenAPI 3 parser of query, path and form parameters, with the
    map of parameter schemas built once per request: Connexion's property
    rebuilds it, over every parameter of the operation, for each parameter a
    request carries (twice per request: validation, then the handler's
    arguments). Handed to Connexion through its public ``uri_parser_class``."""

    @functools.cached_property
    def param_schemas(self):
        return super().param_schemas


# ---------------------------------------------------------------- request bodies


def _parse_int(text: str) -> int:
    # Python refuses int() on more than 4300 digits anyway; anything past 19 is out of range.
    if len(text.lstrip("-")) > 19 or not INT64_MIN <= (value := int(text)) <= INT64_MAX:
        raise ValueError(
            f"integer {text[:24]}{'...' if len(text) > 24 else ''} is outside "
            "the signed 64-bit range"
        )
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:24]} is too large")
    return value


def _parse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def json_depth_exceeds(value, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``value`` (parsed JSON) nests deeper than ``limit`` arrays/objects."""
    return _json_problem(value, limit) == "depth"


def _json_problem(value, limit: int = MAX_JSON_DEPTH) -> str | None:
    """``"depth"`` when ``value`` nests deeper than ``limit``, ``"nul"`` when a key or
    string holds a NUL character (PostgreSQL cannot store one in text or JSONB,
    and no API has a use for it), else None. Iterative: no recursion limit."""
    if isinstance(value, str):
        return "nul" if "\x00" in value else None
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if any("\x00" in key for key in node):
                return "nul"
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return "depth"
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
            elif isinstance(child, str) and "\x00" in child:
                return "nul"
    return None


def parse_json_body(raw: bytes, encoding: str = "utf-8"):
    """Decode and parse a request body, raising ``errors.InvalidInput`` for
    anything that is not a reasonable JSON document (bad encoding, bad syntax,
    excessive nesting, integers outside int64, NaN/Infinity)."""
    from server import errors

    try:
        text = raw.decode(encoding or "utf-8")
    except LookupError:
        raise errors.InvalidInput(f"request body: unknown charset {encoding[:40]!r}") from None
    except UnicodeDecodeError as exc:
        raise errors.InvalidInput(
            f"request body is not valid {encoding}: byte {exc.start} cannot be decoded"
        ) from None
    if not text:
        return None
    too_deep = errors.InvalidInput(f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(
            text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
        )
    except json.JSONDecodeError as exc:
        raise errors.InvalidInput(f"request body is not valid JSON: {exc}") from None
    except ValueError as exc:
        raise errors.InvalidInput(f"request body: {exc}") from None
    except RecursionError:  # the C parser gives up at the interpreter's recursion limit
        raise too_deep from None
    problem = _json_problem(value)
    if problem == "depth":
        raise too_deep
    if problem == "nul":
        raise errors.InvalidInput("request body: a string contains a NUL character")
    return value


class GuardedJSONBodyValidator(JSONRequestBodyValidator):
    """Connexion's JSON body validator with :func:`parse_json_body` as its parser."""

    async def _parse(self, stream, scope):
        raw = b"".join([chunk async for chunk in stream])
        try:
            return parse_json_body(raw, self._encoding)
        except Exception as exc:  # errors.InvalidInput: rendered in the API's own shape
            raise BadRequestProblem(detail=str(exc)) from None


class _FormErrorsAre400:
    async def _parse(self, stream, scope):
        try:
            data = await super()._parse(stream, scope)
        except (MultiPartException, ValueError, UnicodeDecodeError, KeyError) as exc:
            raise BadRequestProblem(detail=f"malformed form body: {exc}") from None
        # Text fields (files are not included here): a NUL, raw or as the JSON
        # escape inside a JSON-valued field, could never be stored.
        for name, value in data.items() if isinstance(data, dict) else ():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and ("\x00" in item or "\\u0000" in item):
                    raise BadRequestProblem(
                        detail=f"form field {name[:64]!r} contains a NUL character"
                    )
        return data


class GuardedFormDataValidator(_FormErrorsAre400, FormDataValidator):
    """``application/x-www-form-urlencoded``: unparsable bodies are a 400."""


class GuardedMultiPartFormDataValidator(_FormErrorsAre400, MultiPartFormDataValidator):
    """``multipart/form-data``: a missing boundary, truncated parts or bad headers are a 400."""


URI_PARSER = URIParser  # Connexion's uri_parser_class

# Connexion's validator_map: the guards above in place of its own validators
VALIDATOR_MAP = {
    "parameter": Int64ParameterValidator,
    "body": MediaTypeDict(
        {
            "*/*json": GuardedJSONBodyValidator,
            "application/x-www-form-urlencoded": GuardedFormDataValidator,
            "multipart/form-data": GuardedMultiPartFormDataValidator,
        }
    ),
}
