"""CWL documents built around a path or reference under test (a step's ``run``,
an ``$import``), shared by the unit tests of the graph checks and the
integration tests that submit the same documents to a node."""

from __future__ import annotations

from pathlib import Path

# ``outputs`` of a one-step workflow that passes on its step's ``out``
STEP_OUT = "{out: {type: File, outputSource: s/out}}"


def one_step(run: Path | str, outputs: str = "[]") -> str:
    """A Workflow of one step ``s`` that runs ``run`` on the File input ``f``."""
    return f"""\
cwlVersion: v1.2
class: Workflow
inputs: {{f: File}}
outputs: {outputs}
steps:
  s:
    run: {run}
    in: {{f: f}}
    out: [out]
"""


def import_tool(path: Path | str) -> str:
    """A CommandLineTool whose schema definitions ``$import`` ``path``."""
    return f"""\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
requirements:
  SchemaDefRequirement:
    types:
      - $import: {path}
inputs: []
outputs: []
"""


def sh_tool(script: str) -> str:
    """A CommandLineTool that runs ``script`` with ``sh -c``; no inputs, no outputs."""
    return f"""\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c, "{script}"]
inputs: []
outputs: []
"""
