"""The worker against real engines (cwltool), real processes and a real database."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from server.auth import ANONYMOUS
from server.wes import service, states, store
from server.wes.worker import Worker

from .conftest import FAIL, SLEEP, TWO_STEP, request

REPO = Path(__file__).resolve().parents[3]


def submit(settings, db, name, text, params=None, **extra):
    form, files = request(name, text, params, **extra)
    return service.submit_run(settings, db, ANONYMOUS, form, files)["run_id"]


def wait_state(db, run_id, wanted, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get_run(db, run_id)
        if run.state in wanted:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} stuck in {store.get_run(db, run_id).state}")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry))
    return members


def group_alive(pgid: int, grace: float = 5.0) -> bool:
    deadline = time.monotonic() + grace
    while group_members(pgid):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
    return False


def test_two_step_workflow_completes_with_tasks_and_outputs(wes_settings, db):
    run_id = submit(wes_settings, db, "two.cwl", TWO_STEP, {"msg": "hello"}, tags='{"k": "v"}')
    assert store.get_run(db, run_id).state == states.QUEUED
    assert Worker(wes_settings, db).run_forever(max_runs=1) == 1
    run = store.get_run(db, run_id)
    assert run.state == states.COMPLETE and run.exit_code == 0 and run.end_time
    out = Path(run.outputs["out"]["location"].removeprefix("file://"))
    assert out.read_text().split()[0] == "6"  # "hello\n"
    tasks = store.get_tasks(db, run.pk)
    assert [t.name for t in tasks] == ["say", "count"]
    assert all(t.exit_code == 0 and t.end_time for t in tasks)
    assert tasks[0].cmd[:2] == ["echo", "hello"]
    log = service.get_run_log(wes_settings, db, ANONYMOUS, run_id)
    assert log["request"]["tags"] == {"k": "v"} and log["state"] == "COMPLETE"


def test_failing_tool_is_executor_error_with_exit_code(wes_settings, db):
    run_id = submit(wes_settings, db, "fail.cwl", FAIL)
    Worker(wes_settings, db).run_forever(max_runs=1)
    run = store.get_run(db, run_id)
    assert run.state == states.EXECUTOR_ERROR and run.exit_code != 0
    (task,) = store.get_tasks(db, run.pk)
    assert task.exit_code == 3


def test_cancel_kills_the_whole_process_tree(wes_settings, db):
    run_id = submit(wes_settings, db, "sleep.cwl", SLEEP)
    worker = Worker(wes_settings, db)
    t = threading.Thread(target=worker.run_forever, kwargs={"max_runs": 1})
    t.start()
    try:
        run = wait_state(db, run_id, {states.RUNNING})
        deadline = time.monotonic() + 30  # until the tool's own sleeps exist
        while time.monotonic() < deadline and not store.get_tasks(db, run.pk):
            time.sleep(0.05)
        assert store.request_cancel(db, run_id) == states.CANCELING
        run = wait_state(db, run_id, {states.CANCELED}, timeout=30)
        assert run.end_time is not None
        assert not group_alive(run.pgid)
        leftovers = subprocess.run(["pgrep", "-f", "sleep 30[01]"], capture_output=True, text=True)
        assert leftovers.stdout.strip() == ""
    finally:
        worker.stop()
        t.join(30)


def test_killed_worker_is_reconciled_and_leaves_nothing_running(wes_settings, db, tmp_path):
    from tests.conftest import settings_env

    run_id = submit(wes_settings, db, "sleep.cwl", SLEEP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENOMEPORT_")}
    env.update(settings_env(wes_settings))
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "worker", "--max-runs", "1"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run = wait_state(db, run_id, {states.RUNNING}, timeout=60)
        while not store.get_run(db, run_id).pgid:
            time.sleep(0.05)
        pgid = store.get_run(db, run_id).pgid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert store.get_run(db, run_id).state == states.RUNNING
    assert Worker(wes_settings, db).reconcile() == [run_id]
    run = store.get_run(db, run_id)
    assert run.state == states.SYSTEM_ERROR and run.end_time is not None
    assert not group_alive(pgid)


def test_shutdown_stops_running_runs(wes_settings, db):
    run_id = submit(wes_settings, db, "sleep.cwl", SLEEP)
    worker = Worker(wes_settings, db)
    t = threading.Thread(target=worker.run_forever)
    t.start()
    wait_state(db, run_id, {states.RUNNING})
    worker.stop()
    t.join(30)
    run = store.get_run(db, run_id)
    assert run.state == states.SYSTEM_ERROR and "shut down" in run.system_logs[-1]
