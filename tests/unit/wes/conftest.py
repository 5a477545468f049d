from __future__ import annotations

import io

import pytest

from tests.support.cwl import sh_tool
from tests.support.wes import run_form

# A tool that copies its one File input to its stdout (``out``).
CAT = """\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: cat
inputs:
  f: {type: File, inputBinding: {position: 1}}
outputs:
  out: stdout
stdout: out.txt
"""

TWO_STEP = """\
cwlVersion: v1.2
class: Workflow
inputs:
  msg: string
outputs:
  out:
    type: File
    outputSource: count/out
steps:
  say:
    run:
      class: CommandLineTool
      baseCommand: echo
      inputs:
        msg: {type: string, inputBinding: {position: 1}}
      outputs:
        out: stdout
      stdout: said.txt
    in: {msg: msg}
    out: [out]
  count:
    run:
      class: CommandLineTool
      baseCommand: [wc, -c]
      inputs:
        f: {type: File, inputBinding: {position: 1}}
      outputs:
        out: stdout
      stdout: count.txt
    in: {f: say/out}
    out: [out]
"""

SLEEP = """\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c]
arguments: ["sleep 300 & sleep 301; wait"]
inputs: []
outputs: []
"""

FAIL = sh_tool("exit 3")


def request(name: str, text: str, params: dict | None = None, **extra) -> tuple[dict, list]:
    return run_form(name, params, **extra), [(name, io.BytesIO(text.encode()))]


@pytest.fixture
def wes_settings(settings):
    return settings.with_overrides(wes_heartbeat_timeout=3, wes_poll_ms=50)
