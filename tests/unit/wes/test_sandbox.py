"""The sandbox's choices (mounts, network rule, fail closed) with real bwrap,
real cwltool and a real database."""

import json
import shutil
import socket
import threading
from pathlib import Path

import pytest

from server.wes import sandbox, states, store
from server.wes.worker import Worker
from tests.support.cwl import sh_tool

from .test_worker import submit

NET_TOOL = """\
cwlVersion: v1.2
class: CommandLineTool
requirements:
  NetworkAccess: {networkAccess: true}
baseCommand: [bash, -c]
arguments: ["exec 3<>/dev/tcp/127.0.0.1/PORT && echo CONNECTED"]
inputs: []
outputs:
  out: stdout
stdout: net.txt
"""

HINT_ONLY = """\
cwlVersion: v1.2
class: CommandLineTool
hints:
  - class: NetworkAccess
    networkAccess: true
baseCommand: [echo, hi]
inputs: []
outputs: []
"""


def test_readable_paths_from_job_and_from_the_services_list(tmp_path):
    work = tmp_path / "run"
    (work / "inputs").mkdir(parents=True)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.bam").write_text("x")
    (data / "a.bam.bai").write_text("x")
    job = {
        "bam": {
            "class": "File",
            "location": f"file://{data}/a.bam",
            "secondaryFiles": [{"class": "File", "path": str(data / "a.bam.bai")}],
        },
        "inner": {"class": "File", "path": str(work / "inputs" / "x")},
        "missing": {"class": "File", "path": str(tmp_path / "nope")},
    }
    (work / "job.json").write_text(json.dumps(job))
    got = sandbox.readable_paths(work)
    assert got == sorted([str(data / "a.bam"), str(data / "a.bam.bai"), str(sandbox.WORKFLOWS)])
    (work / "readable.json").write_text(json.dumps([str(data), str(work / "inputs")]))
    assert sandbox.readable_paths(work) == [str(data)]  # the service's list wins
    (work / "readable.json").write_text('{"not": "a list"}')
    with pytest.raises(sandbox.SandboxError):
        sandbox.readable_paths(work)


def test_network_access_is_found_in_requirements_not_hints(tmp_path):
    req = tmp_path / "req.cwl"
    req.write_text(NET_TOOL)
    hint = tmp_path / "hint.cwl"
    hint.write_text(HINT_ONLY)
    assert sandbox.declares_network([req]) is True
    assert sandbox.declares_network([hint]) is False


def test_bwrap_command_mounts_no_node_directory(settings, tmp_path):
    work = tmp_path / "var" / "wes" / "run1"
    work.mkdir(parents=True)
    args = sandbox.bwrap_args(
        workdir=work,
        readable=[str(tmp_path)],
        python=[],
        network=False,
        uid=999,
        gid=999,
        env={"PATH": "/usr/bin"},
        masks=[str(tmp_path / "var"), str(tmp_path / "var" / "wes")],
    )
    assert "--unshare-net" in args and "--die-with-parent" in args and "--clearenv" in args
    # a readable directory that contains var/ gets var/ hidden, then only this run back
    assert args.index(str(tmp_path / "var")) > args.index(str(tmp_path))
    tmpfs = [args[i + 1] for i, a in enumerate(args) if a == "--tmpfs"]
    assert str(tmp_path / "var") in tmpfs
    assert args[-8] == sandbox.SETPRIV and "--reuid=999" in args[-8:]  # tools never run as root


def test_a_run_requiring_network_is_refused_unless_the_node_allows_it(wes_settings, db):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    threading.Thread(target=listener.accept, daemon=True).start()
    tool = NET_TOOL.replace("PORT", str(listener.getsockname()[1]))
    try:
        refused = submit(wes_settings, db, "net.cwl", tool)
        Worker(wes_settings, db).run_forever(max_runs=1)
        run = store.get_run(db, refused)
        assert run.state == states.EXECUTOR_ERROR
        assert any("requires NetworkAccess" in line for line in run.system_logs)

        allowed = wes_settings.with_overrides(wes_allow_network=True)
        ok = submit(allowed, db, "net.cwl", tool)
        Worker(allowed, db).run_forever(max_runs=1)
        run = store.get_run(db, ok)
        assert run.state == states.COMPLETE, run.system_logs
    finally:
        listener.close()


def test_the_worker_fails_closed_without_bwrap(wes_settings, db, monkeypatch):
    real = shutil.which
    monkeypatch.setattr(sandbox.shutil, "which", lambda n: None if n == "bwrap" else real(n))
    run_id = submit(wes_settings, db, "hint.cwl", HINT_ONLY)
    Worker(wes_settings, db).run_forever(max_runs=1)
    run = store.get_run(db, run_id)
    assert run.state == states.SYSTEM_ERROR and run.pid is None  # nothing was started
    assert any("sandbox unavailable" in line and "bwrap" in line for line in run.system_logs)
    with pytest.raises(sandbox.SandboxError):
        sandbox.check(wes_settings)
    sandbox.check(wes_settings.with_overrides(wes_sandbox="none"))  # a container's node may opt out


STREAMS = sh_tool("echo to-out; echo to-err >&2")


def test_task_streams_are_the_tools_own(wes_settings, db):
    run_id = submit(wes_settings, db, "streams.cwl", STREAMS)
    Worker(wes_settings, db).run_forever(max_runs=1)
    run = store.get_run(db, run_id)
    assert run.state == states.COMPLETE, run.system_logs
    (task,) = store.get_tasks(db, run.pk)
    assert task.cmd == ["sh", "-c", "echo to-out; echo to-err >&2"] and task.exit_code == 0
    assert Path(task.stdout_path).read_text() == "to-out\n"
    assert Path(task.stderr_path).read_text() == "to-err\n"
    assert (
        store.aware(run.start_time)
        <= store.aware(task.start_time)
        <= store.aware(task.end_time)
        <= store.aware(run.end_time)
    )


def test_the_leaders_slurmctld_address_and_its_per_run_conf(tmp_path):
    from server.wes import slurm_relay

    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=c\nSlurmctldHost=vm(127.0.0.1)  # here\nSlurmctldPort=6817\n")
    ctl = slurm_relay.controller(conf)
    assert (ctl.name, ctl.address, ctl.port, ctl.loopback) == ("vm", "127.0.0.1", 6817, True)
    conf.write_text(
        "SlurmctldHost=ctl(10.1.2.3)\nSlurmctldHost=backup(10.1.2.4)\n"
        "SlurmctldPort=6900-6904\nPartitionName=main Nodes=n1\n"
    )
    ctl = slurm_relay.controller(conf)
    assert (ctl.address, ctl.port, ctl.loopback) == ("10.1.2.3", 6900, False)
    copy = slurm_relay.leader_conf(conf, tmp_path / "leader.conf", ctl)
    text = copy.read_text()
    assert "SlurmctldHost=ctl(127.0.0.1)\n" in text and "10.1.2" not in text
    assert "PartitionName=main Nodes=n1" in text
    conf.write_text("ClusterName=c\n")
    with pytest.raises(ValueError):
        slurm_relay.controller(conf)


def test_jobs_do_not_see_the_leaders_relay_socket(settings, tmp_path):
    work = tmp_path / "run"
    work.mkdir()
    args = sandbox.bwrap_args(
        workdir=work,
        readable=[],
        python=[],
        network=False,
        uid=999,
        gid=999,
        env=None,
        privileged=False,
        hide=[str(work / sandbox.RELAY_DIR)],
    )
    assert args.index(str(work / sandbox.RELAY_DIR)) > args.index("--chdir")  # after the run dir
