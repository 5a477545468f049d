"""Connexion request validation with compiled parameter schemas.

Connexion's ``ParameterValidator`` deep-copies each parameter's definition and
builds a new JSON-schema validator for it on every request. An htsget ticket
has nine parameters, so that rebuilding cost more than computing the ticket.
``CachedParameterValidator`` checks exactly the same schemas with the same
draft-4 format checker, but builds each validator once per parameter
definition and reuses it (validators are stateless between ``iter_errors``
calls).
"""

from __future__ import annotations

import logging
import threading

from connexion.utils import is_null, is_nullable
from connexion.validators import ParameterValidator
from connexion.validators.parameter import draft4_format_checker
from jsonschema import Draft4Validator, ValidationError

logger = logging.getLogger(__name__)

_MAX_ENTRIES = 4096
# id(definition) -> (definition, validator). The definition is kept alive by the
# entry, so its id cannot be reused by another object while it is cached; the
# identity check below makes a stale hit impossible.
_VALIDATORS: dict[int, tuple[dict, Draft4Validator]] = {}
_LOCK = threading.Lock()


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


class CachedParameterValidator(ParameterValidator):
    """``ParameterValidator`` with one compiled validator per parameter definition."""

    def validate_parameter(self, parameter_type, value, param, param_name=None):
        if is_nullable(param) and is_null(value):
            return None
        if value is not None:
            try:
                _validator_for(param).validate(value)
            except ValidationError as exc:  # the same first error Connexion reports
                return str(exc)
            return None
        if param.get("required"):
            return f"Missing {parameter_type} parameter '{param['name']}'"
        return None


VALIDATOR_MAP = {"parameter": CachedParameterValidator}
