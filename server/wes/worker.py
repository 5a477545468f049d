"""``genomeport worker``: claims queued runs and executes them.

Any number of worker processes (on any number of hosts sharing the database
and the WES work directory) may run beside any number of API processes. Each
worker runs up to ``wes_worker_slots`` runs at once, one thread per run; each
engine runs in its own session (process group), so a cancel or a lost worker
ends the whole process tree. A heartbeat thread keeps the worker's runs alive
in the database; reconciliation (on start and periodically) closes runs whose
worker vanished.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

from server.db import Database
from server.settings import Settings
from server.wes import sandbox, states, store
from server.wes.engines import ENGINES, cluster_jobs_for, get_engine
from server.wes.tables import WesRun, utcnow

logger = logging.getLogger(__name__)

KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL of a canceled run


def cancel_cluster_jobs(settings: Settings, job_ids: list) -> None:
    ENGINES["toil"](settings).cancel_cluster_jobs(job_ids)


class Execution:
    """One run on one worker: start the engine, follow it, record the outcome."""

    def __init__(self, worker: Worker, run: WesRun):
        self.worker = worker
        self.settings = worker.settings
        self.db = worker.db
        self.run = run
        self.workdir = Path(run.workdir)
        self.tasks: dict[str, int] = {}  # engine task key -> seq
        self.task_logs: dict[str, list[str]] = {}
        self.cluster_ids: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.stdout = self.stderr = None  # the worker's own handles on the engine's logs
        self.relay = None  # the Toil leader's way to slurmctld (sandbox.Launch.start_relay)
        self.events_offset = 0

    # ------------------------------------------------------------------ main
    def __call__(self) -> None:
        try:
            self.execute()
        except Exception as exc:  # noqa: BLE001 - any failure of the node itself
            logger.exception("wes run %s: system error", self.run.id)
            self.kill()
            store.transition(
                self.db,
                self.run.id,
                states.SYSTEM_ERROR,
                expect=(states.INITIALIZING, states.RUNNING),
                log=f"system error: {type(exc).__name__}: {exc}",
            )
            store.transition(self.db, self.run.id, states.CANCELED, expect=(states.CANCELING,))
        finally:
            from server.wes import decrypted

            decrypted.remove(self.workdir)  # encrypted inputs: plaintext only while it runs
            for fh in (self.stdout, self.stderr):
                if fh is not None:
                    fh.close()
            if self.relay is not None:
                self.relay.close()

    def execute(self) -> None:
        run = self.run
        engine = get_engine(self.settings, run.engine)
        for sub in ("outputs", "tmp", "tasks"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        job = self.workdir / "job.json"
        env = engine.environment(self.workdir, run.id)
        preserve: tuple = ()
        trusted = run.owner in self.settings.wes_node_callers
        extra_rw: list[str] = []
        if trusted:
            # trusted callers' tools (beacon-load-vcf) reach this node's database
            var_dir = Path(self.settings.var_dir).resolve()
            env["GENOMEPORT_DATABASE_URL"] = self.settings.effective_database_url
            env["GENOMEPORT_VAR_DIR"] = str(var_dir)
            preserve = ("GENOMEPORT_DATABASE_URL", "GENOMEPORT_VAR_DIR")
            extra_rw.append(str(var_dir))
            db_url = self.settings.effective_database_url
            if db_url.startswith("sqlite:///"):
                db_dir = Path(db_url.removeprefix("sqlite:///")).resolve().parent
                if not db_dir.is_relative_to(var_dir):
                    extra_rw.append(str(db_dir))
        cmd = engine.command(
            self.workdir, run.workflow, job, run.engine_params or {}, preserve=preserve
        )
        on_cluster = (
            run.engine == "toil" and (run.engine_params or {}).get("batchSystem") == "slurm"
        )
        base = engine.base_command()
        from server.wes import decrypted

        decrypted.stage(self.settings, self.workdir)  # before the sandbox takes the directory
        try:
            launch = sandbox.wrap(
                self.settings,
                workdir=self.workdir,
                command=cmd,
                env=env,
                workflow=run.workflow,
                trusted=trusted,
                extra_rw=extra_rw,
                engine_executables=base[:1],
                keep_env=preserve,
                toil_worker=str(Path(base[0]).parent / "_toil_worker") if on_cluster else None,
                cluster_client=on_cluster,
                support_files=engine.support_files(),
            )
        except sandbox.NetworkRefused as exc:
            store.transition(self.db, run.id, states.RUNNING, expect=(states.INITIALIZING,))
            store.transition(
                self.db,
                run.id,
                states.EXECUTOR_ERROR,
                expect=(states.RUNNING,),
                log=f"refused: {exc}",
            )
            store.transition(self.db, run.id, states.CANCELED, expect=(states.CANCELING,))
            return
        except sandbox.SandboxError as exc:
            logger.error("wes run %s: sandbox unavailable: %s", run.id, exc)
            store.transition(
                self.db,
                run.id,
                states.SYSTEM_ERROR,
                expect=(states.INITIALIZING, states.RUNNING),
                log=f"sandbox unavailable, the run was not started: {exc}",
            )
            store.transition(self.db, run.id, states.CANCELED, expect=(states.CANCELING,))
            return
        if self.canceled():
            store.transition(self.db, run.id, states.CANCELED, expect=(states.CANCELING,))
            return
        # The worker keeps its own descriptors of the engine's logs and reads them
        # through those only: the run directory belongs to the run, which may swap
        # the names for links to files it could not read itself.
        self.relay = launch.start_relay()
        # kept open for the run's life, closed when the run ends (__call__'s finally)
        self.stdout = open(self.workdir / "stdout.txt", "w+b")  # noqa: SIM115
        self.stderr = open(self.workdir / "stderr.txt", "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(
            launch.argv,
            cwd=self.workdir,
            stdout=self.stdout,
            stderr=self.stderr,
            stdin=subprocess.DEVNULL,
            env=launch.env,
            start_new_session=True,
        )
        started = time.monotonic()
        wall = float(self.settings.wes_run_wall_seconds or 0)
        store.update_run(self.db, run.id, pid=self.proc.pid, pgid=self.proc.pid, cmd=cmd)
        if not store.transition(
            self.db, run.id, states.RUNNING, expect=(states.INITIALIZING,), log=launch.summary()
        ):
            self.stop_canceled(engine)
            return
        parser = engine.new_parser()
        offset = 0
        poll = max(self.settings.wes_poll_ms, 20) / 1000.0
        last_state_check = 0.0
        while True:
            code = self.proc.poll()
            offset = self.follow_log(parser, offset)
            if code is not None:
                break
            now = time.monotonic()
            if now - last_state_check >= 0.5:
                last_state_check = now
                if on_cluster:
                    self.track_cluster_jobs()
                if self.canceled():
                    self.stop_canceled(engine)
                    return
                if wall and now - started > wall:
                    self.stop_limit(
                        f"wall-time limit of {wall:g} s exceeded "
                        "(GENOMEPORT_WES_RUN_WALL_SECONDS): the run was killed"
                    )
                    return
            if self.worker.stopping.is_set():
                self.kill()
                store.transition(
                    self.db,
                    run.id,
                    states.SYSTEM_ERROR,
                    expect=(states.RUNNING,),
                    log="worker shut down during the run",
                )
                store.transition(self.db, run.id, states.CANCELED, expect=(states.CANCELING,))
                return
            time.sleep(poll)
        self.follow_log(parser, offset)
        store.kill_group(self.proc.pid)  # nothing of the run outlives it
        self.close_tasks(code)
        outputs = self.read_outputs()
        if code == 0:
            self.publish_outputs(outputs)
            store.transition(
                self.db,
                run.id,
                states.COMPLETE,
                expect=(states.RUNNING,),
                exit_code=0,
                outputs=outputs,
            )
        else:
            store.transition(
                self.db,
                run.id,
                states.EXECUTOR_ERROR,
                expect=(states.RUNNING,),
                exit_code=code,
                outputs=outputs,
                log=f"{engine.name} exited with status {code}",
            )
        # a cancel that raced the engine's own exit still ends as CANCELED
        store.transition(
            self.db, run.id, states.CANCELED, expect=(states.CANCELING,), exit_code=code
        )

    # -------------------------------------------------------------- helpers
    def canceled(self) -> bool:
        current = store.get_run(self.db, self.run.id)
        return current is None or current.state == states.CANCELING

    def kill(self) -> None:
        if self.proc is None:
            return
        store.kill_group(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(KILL_GRACE)
        store.kill_group(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable process
            logger.error("wes run %s: engine %s did not die", self.run.id, self.proc.pid)
        jobs = sorted(set(self.cluster_ids) | set(cluster_jobs_for(self.run.id)))
        if jobs:
            cancel_cluster_jobs(self.settings, jobs)

    def track_cluster_jobs(self) -> None:
        """Record the Slurm jobs of this run (tagged with its id) for cancel/reconcile."""
        found = [j for j in cluster_jobs_for(self.run.id) if j not in self.cluster_ids]
        if found:
            self.cluster_ids += found
            store.update_run(self.db, self.run.id, cluster_job_ids=list(self.cluster_ids))

    def _stop(self, state: str, expect: str, log: str) -> int | None:
        """Kill the engine, close its tasks and move the run from ``expect`` to
        ``state``; the engine's exit code."""
        self.kill()
        self.close_tasks(None, canceled=True)
        code = self.proc.returncode if self.proc else None
        store.transition(self.db, self.run.id, state, expect=(expect,), exit_code=code, log=log)
        return code

    def stop_canceled(self, engine) -> None:
        self._stop(
            states.CANCELED, states.CANCELING, "canceled: the engine's process group was killed"
        )

    def stop_limit(self, reason: str) -> None:
        logger.warning("wes run %s: %s", self.run.id, reason)
        code = self._stop(states.EXECUTOR_ERROR, states.RUNNING, reason)
        store.transition(
            self.db, self.run.id, states.CANCELED, expect=(states.CANCELING,), exit_code=code
        )

    def follow_log(self, parser, offset: int) -> int:
        self.follow_events()
        data = _read_from(self.stderr, offset)
        end = data.rfind(b"\n")
        if end < 0:
            return offset
        chunk = data[: end + 1].decode("utf-8", "replace")
        changed: set[str] = set()
        for line in chunk.splitlines():
            for ev in parser.feed(line):
                self.apply(ev, changed)
        self.flush_tasks(changed)
        return offset + end + 1

    def follow_events(self) -> None:
        """Tasks from the cwltool launcher: each tool's own streams, real times.

        The events file is written inside the sandbox, so nothing in it is
        trusted: stream paths must be this run's ``tasks/tool-<n>.*`` files."""
        path = self.workdir / "tasks" / "events.jsonl"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return
            fh.seek(self.events_offset)
            data = fh.read(1 << 20)
        end = data.rfind(b"\n")
        if end < 0:
            return
        self.events_offset += end + 1
        for line in data[: end + 1].splitlines():
            try:
                ev = json.loads(line)
                seq = int(ev["seq"])
                when = dt.datetime.fromisoformat(ev["time"])
            except (ValueError, KeyError, TypeError):
                continue
            key = f"tool-{seq}"
            if ev.get("event") == "start" and key not in self.tasks:
                self.tasks[key] = len(self.tasks) + 1
                self.task_logs[key] = []
                cmd = ev.get("cmd")
                store.save_task(
                    self.db,
                    self.run.pk,
                    self.tasks[key],
                    name=str(ev.get("name") or key)[:500],
                    cmd=[str(c) for c in cmd] if isinstance(cmd, list) else [],
                    start_time=when,
                    stdout_path=str(self.workdir / "tasks" / f"{key}.stdout"),
                    stderr_path=str(self.workdir / "tasks" / f"{key}.stderr"),
                )
            elif ev.get("event") == "end" and key in self.tasks:
                code = ev.get("exit_code")
                store.save_task(
                    self.db,
                    self.run.pk,
                    self.tasks[key],
                    end_time=when,
                    exit_code=code if isinstance(code, int) else None,
                )

    def apply(self, ev, changed: set[str]) -> None:
        key = ev.key
        if key not in self.tasks:
            if not (ev.started or ev.name):
                return
            self.tasks[key] = len(self.tasks) + 1
            self.task_logs[key] = []
            self.pending[key] = {
                "name": ev.name or key,
                "start_time": utcnow(),
                "stderr_path": str(self.task_log_path(key)),
            }
        fields = self.pending.setdefault(key, {})
        if ev.cmd is not None:
            fields["cmd"] = ev.cmd
        if ev.log_line is not None:
            self.task_logs[key].append(ev.log_line)
        if ev.finished:
            fields["end_time"] = utcnow()
            fields["exit_code"] = ev.exit_code
        changed.add(key)

    @property
    def pending(self) -> dict[str, dict]:
        if not hasattr(self, "_pending"):
            self._pending: dict[str, dict] = {}
        return self._pending

    def task_log_path(self, key: str) -> Path:
        return self.workdir / "tasks" / f"task-{self.tasks[key]}.log"

    def flush_tasks(self, changed: set[str]) -> None:
        for key in changed:
            lines = self.task_logs.get(key)
            if lines:
                with open(self.task_log_path(key), "a", encoding="utf-8") as fh:
                    fh.write("\n".join(lines) + "\n")
                lines.clear()
            fields = self.pending.pop(key, {})
            if fields:
                store.save_task(self.db, self.run.pk, self.tasks[key], **fields)

    def close_tasks(self, code: int | None, canceled: bool = False) -> None:
        """Tasks the engine never reported as finished end with the run; Toil's
        per-job logs (``--writeLogs``) become the tasks' logs."""
        now = utcnow()
        job_logs = sorted((self.workdir / "tasks").glob("*_[0-9][0-9][0-9].log"))
        for task in store.get_tasks(self.db, self.run.pk):
            if len(task.cmd or []) == 2 and self.run.engine == "toil":
                mangled = str(task.cmd[1]).replace("-", "--")
                match = [p for p in job_logs if mangled in p.name]
                if match:
                    with open(task.stderr_path, "a", encoding="utf-8") as out:
                        for p in match:
                            out.write(p.read_text("utf-8", "replace"))
            if task.end_time is None:
                fields = {"end_time": now}
                if task.exit_code is None:
                    fields["exit_code"] = None if canceled else (code if code else 0)
                if canceled:
                    fields["system_logs"] = list(task.system_logs or []) + ["canceled"]
                store.save_task(self.db, self.run.pk, task.seq, **fields)

    def publish_outputs(self, outputs: dict) -> None:
        """Make every output file under the run's output directory a DRS object
        readable by the run's owner (``wes~<hex>``)."""
        from server.drs.service import register_wes_output

        outdir = (self.workdir / "outputs").resolve()

        def walk(value):
            if isinstance(value, list):
                for item in value:
                    yield from walk(item)
            elif isinstance(value, dict):
                if value.get("class") == "File":
                    local = str(value.get("path") or value.get("location") or "").removeprefix(
                        "file://"
                    )
                    path = Path(local).resolve() if local else None
                    if path is not None and path.is_file() and path.is_relative_to(outdir):
                        yield path
                for key, item in value.items():
                    if key != "secondaryFiles" or isinstance(item, list):
                        yield from walk(item)

        for path in dict.fromkeys(walk(outputs)):
            rel = path.relative_to(outdir).as_posix()
            try:
                register_wes_output(
                    self.db,
                    run_id=self.run.id,
                    name=rel,
                    path=path,
                    owner=self.run.owner,
                    url_key=f"{self.run.id}/outputs/{rel}",
                )
            except Exception:  # noqa: BLE001 - the run's result stands; the object is missing
                logger.exception(
                    "could not publish output %s of run %s as a DRS object", rel, self.run.id
                )

    def read_outputs(self) -> dict:
        text = _read_from(self.stdout, 0).decode("utf-8", "replace") if self.stdout else ""
        start = text.find("{")
        if start < 0:
            return {}
        try:
            value = json.loads(text[start:])
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


def _read_from(fh, offset: int) -> bytes:
    """What the engine wrote to ``fh`` from ``offset`` on (by descriptor, never by name)."""
    if fh is None:
        return b""
    chunks = []
    while True:
        block = os.pread(fh.fileno(), 1 << 20, offset)
        if not block:
            return b"".join(chunks)
        chunks.append(block)
        offset += len(block)


class Worker:
    def __init__(self, settings: Settings, db: Database, *, slots: int | None = None):
        self.settings = settings
        self.db = db
        self.slots = slots or settings.wes_worker_slots
        self.id = store.worker_identity()
        self.stopping = threading.Event()
        self.threads: dict[str, threading.Thread] = {}
        self.timeout = float(settings.wes_heartbeat_timeout)

    def reconcile(self) -> list[str]:
        closed = store.reconcile(
            self.db,
            self.timeout,
            cancel_cluster_jobs=lambda ids: cancel_cluster_jobs(self.settings, ids),
        )
        for run_id in closed:
            logger.warning("wes run %s: executor vanished; closed", run_id)
        return closed

    def heartbeat_loop(self) -> None:
        interval = max(0.2, min(5.0, self.timeout / 3))
        while not self.stopping.wait(interval):
            try:
                store.heartbeat(self.db, self.id)
            except Exception:  # noqa: BLE001 - keep beating through a database blip
                logger.warning("wes heartbeat failed", exc_info=True)

    def run_forever(self, *, max_runs: int | None = None, idle_exit: float | None = None) -> int:
        """Claim and execute runs until stopped; returns how many were executed."""
        logger.info("wes worker %s started (%d slots)", self.id, self.slots)
        self.reconcile()
        beat = threading.Thread(target=self.heartbeat_loop, name="wes-heartbeat", daemon=True)
        beat.start()
        poll = max(self.settings.wes_poll_ms, 20) / 1000.0
        reconcile_every = max(1.0, self.timeout / 2)
        last_reconcile = time.monotonic()
        started = 0
        idle_since = time.monotonic()
        try:
            while not self.stopping.is_set():
                for run_id, t in list(self.threads.items()):
                    if not t.is_alive():
                        del self.threads[run_id]
                if time.monotonic() - last_reconcile >= reconcile_every:
                    last_reconcile = time.monotonic()
                    self.reconcile()
                claimed = None
                if len(self.threads) < self.slots and (max_runs is None or started < max_runs):
                    claimed = store.claim(self.db, self.id)
                if claimed is not None:
                    started += 1
                    t = threading.Thread(target=Execution(self, claimed), name=f"wes-{claimed.id}")
                    self.threads[claimed.id] = t
                    t.start()
                    idle_since = time.monotonic()
                    continue
                if self.threads:
                    idle_since = time.monotonic()
                elif (max_runs is not None and started >= max_runs) or (
                    idle_exit is not None and time.monotonic() - idle_since >= idle_exit
                ):
                    break
                self.stopping.wait(poll)
        finally:
            self.stopping.set()
            for t in list(self.threads.values()):
                t.join(60)
            beat.join(10)
        logger.info("wes worker %s stopped after %d runs", self.id, started)
        return started

    def stop(self, *_args) -> None:
        self.stopping.set()


def serve(settings: Settings, db: Database, **kw) -> int:
    # fail closed: a worker that cannot sandbox runs takes none
    sandbox.check(settings)
    worker = Worker(settings, db, slots=kw.pop("slots", None))
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    return worker.run_forever(**kw)
