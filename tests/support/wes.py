"""A WES run request as a client sends it: the form fields and the attachments.

The unit, API and integration tests and the WES benchmark all submit CWL runs;
one copy of the request keeps them sending the same fields.
"""

from __future__ import annotations

import io
import json


def run_form(workflow_url: str, params: dict | None = None, **extra: str) -> dict[str, str]:
    """The form fields of a CWL v1.2 run of ``workflow_url``; ``extra`` adds or
    replaces fields."""
    return {
        "workflow_type": "CWL",
        "workflow_type_version": "v1.2",
        "workflow_url": workflow_url,
        "workflow_params": json.dumps(params or {}),
        **extra,
    }


def attachments(*files: tuple[str, str | bytes]) -> list[tuple[str, tuple[str, io.BytesIO]]]:
    """``workflow_attachment`` parts for (name, content) pairs."""
    encoded = [(name, body.encode() if isinstance(body, str) else body) for name, body in files]
    return [("workflow_attachment", (name, io.BytesIO(body))) for name, body in encoded]
