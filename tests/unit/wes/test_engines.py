import pytest

from server.errors import InvalidInput
from server.settings import Settings
from server.wes.engines import CwlLogParser, Cwltool, Toil, ToilLogParser, get_engine


def test_unknown_engine_refused():
    with pytest.raises(InvalidInput):
        get_engine(Settings(), "nextflow")


def test_default_engine():
    assert get_engine(Settings(), None).name == "cwltool"


@pytest.mark.parametrize(
    "params",
    [
        {"--tmpdir-prefix": "/etc"},
        {"--user-space-docker-cmd": "x"},
        {"parallel": "maybe"},
        {"eval-timeout": "1; rm"},
        {"on-error": "explode"},
        {"eval-timeout": 10**9},
        ["--parallel"],
    ],
)
def test_cwltool_params_outside_allowlist_refused(params):
    with pytest.raises(InvalidInput):
        Cwltool(Settings()).check_params(params)


def test_cwltool_params_become_fixed_flags(tmp_path):
    engine = Cwltool(Settings(wes_container="none"))
    clean = engine.check_params({"--parallel": "", "on-error": "continue"})
    cmd = engine.command(tmp_path, "wf.cwl", tmp_path / "job.json", clean)
    assert "--parallel" in cmd and "--on-error=continue" in cmd and "--no-container" in cmd
    assert cmd[-3:] == ["--", "wf.cwl", str(tmp_path / "job.json")]


@pytest.mark.parametrize(
    "params",
    [{"batchSystem": "mesos"}, {"maxMemory": "1G --x"}, {"jobStore": "/tmp"}, {"maxCores": -1}],
)
def test_toil_params_refused(params):
    with pytest.raises(InvalidInput):
        Toil(Settings()).check_params(params)


def test_toil_slurm_command(tmp_path):
    engine = Toil(Settings(wes_toil_bin="/bin/true", wes_container="none"))
    cmd = engine.command(
        tmp_path,
        "wf.cwl",
        tmp_path / "job.json",
        engine.check_params({"batchSystem": "slurm", "maxCores": "2"}),
    )
    assert cmd[0] == "/bin/true" and "--batchSystem=slurm" in cmd and "--maxCores=2" in cmd
    assert "--comment=genomeport-wes-R1" in engine.environment(tmp_path, "R1")["TOIL_SLURM_ARGS"]


def test_cwltool_log_parser_multiline_and_failure():
    p = CwlLogParser()
    lines = [
        "INFO [workflow ] start",
        "INFO [step say] start",
        "INFO [job say] /tmp/x$ echo \\",
        "    hello > /tmp/x/said.txt",
        "some tool output",
        "INFO [job say] completed success",
        "INFO [job count] /tmp/y$ wc -c /tmp/y/f",
        "WARNING [job count] exited with status: 3",
        "WARNING [job count] completed permanentFail",
    ]
    events = [e for line in lines for e in p.feed(line)]
    starts = [e for e in events if e.started]
    assert [(e.key, e.cmd) for e in starts] == [
        ("say", ["echo", "hello", ">", "/tmp/x/said.txt"]),
        ("count", ["wc", "-c", "/tmp/y/f"]),
    ]
    ends = {e.key: e.exit_code for e in events if e.finished}
    assert ends == {"say": 0, "count": 3}
    assert any(e.key == "say" and e.log_line == "some tool output" for e in events)


def test_toil_log_parser():
    p = ToilLogParser()
    ev = p.feed(
        "[2026] [I] [toil.leader] Issued job 'CWLJob' two.cwl.first._:f96-30 "
        "kind-CWLJob/instance-je6 v1 with job batch system ID: 2 and disk: 3.0 Gi"
    )
    assert (ev[0].key, ev[0].name, ev[0].started) == (
        "kind-CWLJob/instance-je6",
        "two.cwl.first",
        True,
    )
    ev = p.feed(
        "[2026] [I] Got message from job at time x: CWL step complete: two.cwl.first._:f96-30"
    )
    assert (ev[0].key, ev[0].finished, ev[0].exit_code) == ("kind-CWLJob/instance-je6", True, 0)
    ev = p.feed(
        "[2026] [W] [toil.leader] Job failed with exit value 127: 'CWLJob' x.cwl "
        "kind-CWLJob/instance-zz v1"
    )
    assert (ev[0].key, ev[0].exit_code) == ("kind-CWLJob/instance-zz", 127)
    ev = p.feed("CWL step complete: two.cwl.second._:abc")
    assert (ev[0].key, ev[0].name, ev[0].started) == (
        "two.cwl.second._:abc",
        "two.cwl.second",
        True,
    )


def test_client_side_runner_options_are_dropped():
    clean = Cwltool(Settings()).check_params(
        {"--outdir": "/etc", "--quiet": None, "--parallel": None}
    )
    assert clean == {"parallel": True}
