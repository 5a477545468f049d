"""Fast paths that reach into the web stack's dependencies, each one switchable.

Each module here replaces a slow step of the request path by an equivalent
faster one, using a dependency's private layout where no public API gives
the same speed. Nothing outside this package may use such internals.

``zerocopy``: data-plane bodies go out with ``sendfile`` (it touches uvicorn's
HTTP/1.1 protocol and asyncio's native sendfile).

Only accelerations that remove at least a fifth of their path's cost are kept
(``bench/accel.py`` measures each with and without it in one run). A WSGI
bridge with one thread hop per response, a lean invocation of handlers and
compiled parameter validators were measured on the ticket path at 6%, 10% and
4% of its latency (19% together) and removed: Connexion's own public path
serves every request instead.

``GENOMEPORT_ACCEL`` lists the ones in use (default all; ``none`` turns all
off), so the same node, or a benchmark, can run with and without each one.
Every module checks at start-up that the dependency still has the layout it
relies on (``check_layout``) and fails loudly, naming the dependency, its
installed version and the switch that turns the acceleration off; the
dependency is pinned to the tested range in ``setup.cfg``.
"""

from __future__ import annotations

from importlib.metadata import version

from server.settings import Settings, SettingsError

NAMES = ("zerocopy",)


class LayoutChanged(RuntimeError):
    """A dependency no longer has the internals an acceleration relies on."""


def enabled(settings: Settings) -> frozenset[str]:
    """The accelerations ``settings.accel`` turns on (an unknown name is an error)."""
    raw = settings.accel.strip()
    if raw.lower() == "none" or not raw:
        return frozenset()
    names = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = names - set(NAMES)
    if unknown:
        raise SettingsError(
            f"GENOMEPORT_ACCEL: unknown acceleration(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(NAMES)} (or 'none')"
        )
    return frozenset(names)


def layout_changed(accel: str, distribution: str, what: str) -> LayoutChanged:
    """The error an acceleration raises when ``distribution`` changed under it."""
    return LayoutChanged(
        f"{distribution} {version(distribution)} changed: {what}. The {accel!r} acceleration "
        f"was written for the range of {distribution} pinned in setup.cfg; install that range, "
        f"or start without it (GENOMEPORT_ACCEL without {accel})."
    )


def require(accel: str, distribution: str, condition: bool, what: str) -> None:
    if not condition:
        raise layout_changed(accel, distribution, what)
