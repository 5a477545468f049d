"""Serves WES logs and outputs through the node's signed-URL data plane.

``RunLog`` hands its owner short-lived signed URLs (kind ``wes``) for the run's
stdout/stderr, each task's log and each output file; the data plane resolves
them here. Only the run's owner ever receives such a URL.
"""

from __future__ import annotations

from server.dataplane import register_resolver
from server.wes.service import resolve_file

register_resolver("wes", resolve_file)
