"""WES run states and the transitions the node allows.

::

    QUEUED ──claim──> INITIALIZING ──> RUNNING ──> COMPLETE | EXECUTOR_ERROR | SYSTEM_ERROR
      │                   │               │
      │ cancel            └── cancel ─────┴──> CANCELING ──> CANCELED
      └──────────────> CANCELED

Terminal states never change. Any non-terminal run whose executor vanished
becomes SYSTEM_ERROR (a CANCELING one becomes CANCELED: its work is gone).
"""

from __future__ import annotations

QUEUED = "QUEUED"
INITIALIZING = "INITIALIZING"
RUNNING = "RUNNING"
PAUSED = "PAUSED"
COMPLETE = "COMPLETE"
EXECUTOR_ERROR = "EXECUTOR_ERROR"
SYSTEM_ERROR = "SYSTEM_ERROR"
CANCELING = "CANCELING"
CANCELED = "CANCELED"
PREEMPTED = "PREEMPTED"
UNKNOWN = "UNKNOWN"

ALL = (
    QUEUED,
    INITIALIZING,
    RUNNING,
    PAUSED,
    COMPLETE,
    EXECUTOR_ERROR,
    SYSTEM_ERROR,
    CANCELED,
    CANCELING,
    PREEMPTED,
)
TERMINAL = frozenset({COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, CANCELED, PREEMPTED})
ACTIVE = frozenset({INITIALIZING, RUNNING, CANCELING})  # owned by a live worker

# state -> states it may move to
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({INITIALIZING, CANCELED, SYSTEM_ERROR}),
    INITIALIZING: frozenset({RUNNING, CANCELING, EXECUTOR_ERROR, SYSTEM_ERROR}),
    RUNNING: frozenset({COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, CANCELING}),
    CANCELING: frozenset({CANCELED}),
}


def allowed(src: str, dst: str) -> bool:
    return dst in TRANSITIONS.get(src, frozenset())


def sources(dst: str) -> tuple[str, ...]:
    """States from which ``dst`` may be reached (for conditional UPDATEs)."""
    return tuple(sorted(s for s, targets in TRANSITIONS.items() if dst in targets))
