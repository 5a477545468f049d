"""Switch the node's accelerations off for a benchmark, before the app is built.

``bench/accel.py`` runs one node per configuration; each node's gunicorn loads
its app and worker class from this module, which reads ``BENCH_ACCEL_OFF``
(a comma list of ``bridge``, ``invocation``, ``validators``, ``zerocopy``) and
puts the plain code path in place of each acceleration named:

* ``bridge``: Connexion's own a2wsgi bridge instead of ``server.wsgi_bridge``;
* ``invocation``: Connexion's ``FlaskOperation`` for every handler instead of
  ``server.invocation.LeanOperation``;
* ``validators``: Connexion's ``ParameterValidator`` (schemas compiled per
  request) instead of ``CachedParameterValidator``; the body validators stay,
  since they decide 400 against 500, not speed;
* ``zerocopy``: uvicorn's stock HTTP/1.1 protocol, so the data plane streams
  its bytes in chunks instead of handing the file to ``sendfile``.

The node has no setting for this today, so the switch lives here, outside the
product; once the node has one, this module reduces to setting it.

    gunicorn --worker-class bench.accel_hook.Worker bench.accel_hook:asgi_from_env()
"""

from __future__ import annotations

import os

ACCELERATIONS = ("bridge", "invocation", "validators", "zerocopy")


def disabled() -> set[str]:
    """The accelerations named in ``BENCH_ACCEL_OFF``; an unknown name is an error."""
    names = {n.strip() for n in os.environ.get("BENCH_ACCEL_OFF", "").split(",") if n.strip()}
    unknown = names - set(ACCELERATIONS)
    if unknown:
        raise SystemExit(
            f"BENCH_ACCEL_OFF names unknown accelerations {sorted(unknown)}; "
            f"known: {', '.join(ACCELERATIONS)}"
        )
    return names


def _switch_off(names: set[str]) -> None:
    if "bridge" in names:
        from server import wsgi_bridge

        wsgi_bridge.install = lambda cx_app, **kwargs: None
    if "invocation" in names:
        from server import invocation

        invocation.install = lambda cx_app: None
    if "validators" in names:
        from connexion.validators import ParameterValidator

        from server import validation

        validation.VALIDATOR_MAP = {**validation.VALIDATOR_MAP, "parameter": ParameterValidator}


OFF = disabled()
_switch_off(OFF)

from server.serving import Worker as _NodeWorker  # noqa: E402


class Worker(_NodeWorker):
    """The node's worker, or uvicorn's stock protocol when ``zerocopy`` is off."""

    CONFIG_KWARGS = (
        {"loop": "asyncio", "http": "httptools"} if "zerocopy" in OFF else _NodeWorker.CONFIG_KWARGS
    )


def asgi_from_env():
    """The node's app, built after the switches above."""
    from server.app import asgi_from_env as build

    return build()
