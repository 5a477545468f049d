"""The cwltool launcher's wrapper: each tool's streams go to files of its own
and its start and end to ``events.jsonl``, however cwltool passes the arguments."""

from __future__ import annotations

import json
import os

import cwltool.job as job
import pytest

from server.wes import cwl_launcher


@pytest.fixture
def popen(tmp_path, monkeypatch):
    monkeypatch.setattr(job, "_job_popen", job._job_popen)  # restored after the test
    cwl_launcher.install(str(tmp_path / "tasks"))
    os.makedirs(tmp_path / "tasks")
    return job._job_popen


def _events(tmp_path) -> list[dict]:
    lines = (tmp_path / "tasks" / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_keywords_as_cwltool_passes_them(tmp_path, popen):
    code = popen(
        ["sh", "-c", "echo out; echo err >&2; exit 3"],
        stdin_path=None,
        stdout_path=None,
        stderr_path=None,
        env={"PATH": os.environ["PATH"]},
        cwd=str(tmp_path),
        make_job_dir=lambda: str(tmp_path),
        name="step",
    )
    assert code == 3
    start, end = _events(tmp_path)
    assert (start["event"], start["seq"], start["name"]) == ("start", 1, "step")
    assert start["cmd"] == ["sh", "-c", "echo out; echo err >&2; exit 3"]
    assert (end["event"], end["seq"], end["exit_code"]) == ("end", 1, 3)
    assert (tmp_path / "tasks" / "tool-1.stdout").read_text() == "out\n"
    assert (tmp_path / "tasks" / "tool-1.stderr").read_text() == "err\n"


def test_positional_and_a_declared_stdout_file(tmp_path, popen):
    own = tmp_path / "declared.txt"
    env = {"PATH": os.environ["PATH"]}
    code = popen(["echo", "hi"], None, str(own), None, env, str(tmp_path), lambda: str(tmp_path))
    assert code == 0
    start, _ = _events(tmp_path)
    assert start["name"] == "tool-1"
    assert own.read_text() == "hi\n"
    assert os.path.samefile(own, tmp_path / "tasks" / "tool-1.stdout")


def test_unknown_argument_is_refused(tmp_path, popen):
    with pytest.raises(TypeError):
        popen(["true"], nope=1)
