"""Parameter validation with each JSON-schema validator compiled once.

Connexion's ``ParameterValidator`` deep-copies each parameter's definition and
builds a new JSON-schema validator for it on every request. An htsget ticket
has nine parameters, so that rebuilding cost more than computing the ticket.
``CachedParameterValidator`` checks exactly the same schemas with the same
draft-4 format checker, but builds each validator once per parameter
definition and reuses it (validators are stateless between ``iter_errors``
calls). The int64 guard of ``server.web.validation`` runs first, as without
this acceleration.

It relies on Connexion calling ``validate_parameter(parameter_type, value,
param, param_name)`` for every parameter, and on its draft-4 format checker
(``check_layout``).
"""

from __future__ import annotations

import inspect
import threading

from connexion.utils import is_null, is_nullable
from connexion.validators import ParameterValidator
from connexion.validators.parameter import draft4_format_checker
from jsonschema import Draft4Validator, ValidationError

from server.web.accel import require
from server.web.validation import Int64ParameterValidator

_MAX_ENTRIES = 4096
# id(definition) -> (definition, validator). The definition is kept alive by the
# entry, so its id cannot be reused by another object while it is cached; the
# identity check below makes a stale hit impossible.
_VALIDATORS: dict[int, tuple[dict, Draft4Validator]] = {}
_LOCK = threading.Lock()


def check_layout() -> None:
    """Connexion still validates each parameter through ``validate_parameter``."""
    params = list(inspect.signature(ParameterValidator.validate_parameter).parameters)
    require(
        "validators",
        "connexion",
        params == ["parameter_type", "value", "param", "param_name"],
        f"ParameterValidator.validate_parameter takes {params}, "
        "not (parameter_type, value, param, param_name)",
    )
    calls = inspect.getsource(ParameterValidator.validate_query_parameter)
    require(
        "validators",
        "connexion",
        "self.validate_parameter(" in calls,
        "ParameterValidator.validate_query_parameter no longer calls self.validate_parameter",
    )


def _validator_for(param: dict) -> Draft4Validator:
    entry = _VALIDATORS.get(id(param))
    if entry is not None and entry[0] is param:
        return entry[1]
    validator = Draft4Validator(param.get("schema", param), format_checker=draft4_format_checker)
    with _LOCK:
        if len(_VALIDATORS) >= _MAX_ENTRIES:
            _VALIDATORS.clear()
        _VALIDATORS[id(param)] = (param, validator)
    return validator


class CachedParameterValidator(Int64ParameterValidator):
    """The node's parameter validator with one compiled validator per definition."""

    def check_schema(self, parameter_type, value, param, param_name=None):
        if value is not None and not (is_nullable(param) and is_null(value)):
            try:
                _validator_for(param).validate(value)
            except ValidationError as exc:  # the same first error Connexion reports
                return str(exc)
            return None
        return super().check_schema(parameter_type, value, param, param_name)
