import datetime as dt
import os
import subprocess
import threading

from server.wes import states, store
from server.wes.tables import utcnow


def make(db, n=1, owner="alice"):
    runs = []
    for i in range(n):
        runs.append(
            store.create_run(
                db,
                id=f"run-{owner}-{i}",
                owner=owner,
                request={},
                tags={},
                engine="cwltool",
                engine_params={},
                workdir="/nonexistent",
                workflow="x.cwl",
            )
        )
    return runs


class TestTransitions:
    def test_terminal_state_never_changes(self, db):
        (run,) = make(db)
        assert store.claim(db, "w1").id == run.id
        assert store.transition(db, run.id, states.RUNNING)
        assert store.transition(db, run.id, states.COMPLETE, exit_code=0)
        for target in states.ALL:
            assert not store.transition(db, run.id, target)
        after = store.get_run(db, run.id)
        assert after.state == states.COMPLETE and after.end_time is not None

    def test_cannot_skip_initializing(self, db):
        (run,) = make(db)
        assert not store.transition(db, run.id, states.RUNNING)
        assert not store.transition(db, run.id, states.COMPLETE)
        assert store.get_run(db, run.id).state == states.QUEUED

    def test_cancel_of_queued_run_is_immediate(self, db):
        (run,) = make(db)
        assert store.request_cancel(db, run.id) == states.CANCELED
        assert store.claim(db, "w1") is None
        assert store.get_run(db, run.id).end_time is not None

    def test_cancel_of_running_run_waits_for_worker(self, db):
        (run,) = make(db)
        store.claim(db, "w1")
        store.transition(db, run.id, states.RUNNING)
        assert store.request_cancel(db, run.id) == states.CANCELING
        assert not store.transition(db, run.id, states.COMPLETE)
        assert store.transition(db, run.id, states.CANCELED)

    def test_cancel_of_finished_run_changes_nothing(self, db):
        (run,) = make(db)
        store.claim(db, "w1")
        store.transition(db, run.id, states.RUNNING)
        store.transition(db, run.id, states.EXECUTOR_ERROR, exit_code=2)
        assert store.request_cancel(db, run.id) == states.EXECUTOR_ERROR


class TestClaim:
    def test_oldest_first_and_each_once(self, db):
        runs = make(db, 3)
        got = [store.claim(db, "w1").id for _ in range(3)]
        assert got == [r.id for r in runs]
        assert store.claim(db, "w1") is None

    def test_concurrent_claimers_never_share_a_run(self, db):
        make(db, 12)
        claimed: list[str] = []
        lock = threading.Lock()

        def grab(worker):
            while True:
                run = store.claim(db, worker)
                if run is None:
                    return
                with lock:
                    claimed.append(run.id)

        threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 12


class TestReconcile:
    def test_stale_heartbeat_becomes_system_error(self, db):
        (run,) = make(db)
        store.claim(db, "otherhost:1:abcd")
        store.transition(db, run.id, states.RUNNING)
        old = utcnow() - dt.timedelta(seconds=120)
        store.update_run(db, run.id, heartbeat=old)
        assert store.reconcile(db, 30) == [run.id]
        after = store.get_run(db, run.id)
        assert after.state == states.SYSTEM_ERROR and after.end_time is not None
        assert "vanished" in after.system_logs[-1]

    def test_dead_local_worker_detected_at_once(self, db):
        (run,) = make(db)
        proc = subprocess.Popen(["true"])
        proc.wait()
        store.claim(db, f"{store.HOST}:{proc.pid}:dead")
        assert store.reconcile(db, 3600) == [run.id]
        assert store.get_run(db, run.id).state == states.SYSTEM_ERROR

    def test_live_worker_is_left_alone(self, db):
        (run,) = make(db)
        store.claim(db, f"{store.HOST}:{os.getpid()}:live")
        assert store.reconcile(db, 3600) == []
        assert store.get_run(db, run.id).state == states.INITIALIZING

    def test_canceling_run_of_vanished_worker_ends_canceled(self, db):
        (run,) = make(db)
        store.claim(db, "otherhost:1:abcd")
        store.transition(db, run.id, states.RUNNING)
        store.request_cancel(db, run.id)
        store.update_run(db, run.id, heartbeat=utcnow() - dt.timedelta(hours=1))
        store.reconcile(db, 30)
        assert store.get_run(db, run.id).state == states.CANCELED


def test_state_counts(db):
    make(db, 2)
    counts = store.state_counts(db)
    assert counts[states.QUEUED] == 2 and counts[states.COMPLETE] == 0
