"""Workflow engines: cwltool (embedded default) and Toil (clusters, e.g. Slurm).

An engine turns a prepared run directory into a command line. Nothing from the
request reaches that command line except through ``check_params``: each engine
has an allow-list of parameters, each with a validator, and builds the flags
itself. Engines also parse their own log output into tasks (one per CWL step
job for cwltool, one per cluster job for Toil).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.errors import InvalidInput
from server.settings import Settings

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).resolve().parent / "cwl_launcher.py"
WORKFLOW_TYPE_VERSIONS = {"CWL": ("v1.0", "v1.1", "v1.2")}
# Options of a local CWL runner that WES clients (toil-wes-cwl-runner, cwltest)
# forward as engine parameters. They concern the client's side (where it puts
# outputs, how chatty it is) or a choice the node makes itself (containers), so
# they are accepted and dropped, never passed on.
CLIENT_SIDE = frozenset(
    {"outdir", "quiet", "debug", "disable-color", "no-container", "enable-color", "verbose"}
)
CONTAINER_ENGINES = ("docker", "podman", "singularity", "apptainer")


# ----------------------------------------------------------------- validators
def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return True  # a bare flag sent as {"--parallel": null}
    if isinstance(value, str) and value.lower() in {"", "true", "1", "yes"}:
        return True  # a bare flag ("--parallel": "") means on
    if isinstance(value, str) and value.lower() in {"false", "0", "no"}:
        return False
    raise ValueError("expected a boolean")


def _int(lo: int, hi: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        number = int(str(value), 10)
        if not lo <= number <= hi:
            raise ValueError(f"expected an integer in [{lo}, {hi}]")
        return number

    return check


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError("expected one of " + ", ".join(options))
        return value

    return check


def _memory(value: Any) -> str:
    text = str(value)
    if not re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,3})?([KMGT]i?B?)?", text):
        raise ValueError("expected a size such as 2G or 512Mi")
    return text


@dataclasses.dataclass(frozen=True)
class Param:
    flag: str
    check: Callable[[Any], Any]
    kind: str  # "flag" (boolean switch) or "value"
    default: Any = None
    help: str = ""


@dataclasses.dataclass
class TaskEvent:
    """A change to one task parsed from engine output."""

    key: str  # the engine's name for the task (job name or cluster job id)
    name: str | None = None
    cmd: list[str] | None = None
    started: bool = False
    finished: bool = False
    exit_code: int | None = None
    log_line: str | None = None
    cluster_job_id: str | None = None


class Engine:
    name = ""
    params: dict[str, Param] = {}

    def __init__(self, settings: Settings):
        self.settings = settings

    # ------------------------------------------------------------- metadata
    def available(self) -> bool:
        return bool(self.base_command())

    def base_command(self) -> list[str]:
        raise NotImplementedError

    def version(self) -> str:
        return _version(tuple(self.base_command()))

    def default_parameters(self) -> list[dict]:
        return [
            {
                "name": n,
                "type": "boolean" if p.kind == "flag" else "string",
                "default_value": "" if p.default is None else str(p.default),
            }
            for n, p in self.params.items()
        ]

    # ----------------------------------------------------------- parameters
    def check_params(self, raw: dict) -> dict:
        """Validate ``workflow_engine_parameters`` against the allow-list.

        Keys may be written with or without the leading ``--``. Returns the
        normalised {name: value}; raises InvalidInput on anything else."""
        if not isinstance(raw, dict):
            raise InvalidInput("workflow_engine_parameters must be a JSON object")
        clean = {}
        for key, value in raw.items():
            name = str(key).lstrip("-")
            if name in CLIENT_SIDE:
                continue  # a CWL runner's own options that WES clients forward; the node decides
            param = self.params.get(name)
            if param is None:
                raise InvalidInput(
                    f"workflow_engine_parameters: {key!r} is not allowed for engine {self.name}; "
                    f"allowed: {', '.join(sorted(self.params)) or 'none'}"
                )
            try:
                clean[name] = param.check(value)
            except (ValueError, TypeError) as exc:
                raise InvalidInput(f"workflow_engine_parameters: {key!r}: {exc}") from None
        return clean

    def param_flags(self, params: dict) -> list[str]:
        out: list[str] = []
        for name, value in sorted(params.items()):
            p = self.params[name]
            if p.kind == "flag":
                if value:
                    out.append(p.flag)
            else:
                out.append(f"{p.flag}={value}")
        return out

    # ---------------------------------------------------------------- running
    def use_containers(self) -> bool:
        mode = self.settings.wes_container
        if mode == "none":
            return False
        if mode == "auto":
            return _container_engine_works()
        return True

    def command(
        self, workdir: Path, workflow: str, job: Path, params: dict, preserve: tuple = ()
    ) -> list[str]:
        raise NotImplementedError

    def environment(self, workdir: Path, run_id: str) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "USER", "LOGNAME", "SLURM_CONF")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        # the node's own tools (``genomeport``) come first
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        env["TMPDIR"] = str(workdir / "tmp")
        return env

    def parse_line(self, line: str) -> list[TaskEvent]:
        return []

    def support_files(self) -> list[str]:
        """Files of the node the engine needs inside the sandbox (read-only)."""
        return []

    def cancel_cluster_jobs(self, job_ids: list) -> None:
        """Cancel cluster jobs left by a run (nothing to do off a cluster)."""


@functools.lru_cache(maxsize=1)
def _container_engine_works() -> bool:
    """A container engine whose daemon answers (a bare client binary is not enough)."""
    for name in CONTAINER_ENGINES:
        path = shutil.which(name)
        if not path:
            continue
        probe = [path, "info"] if name in ("docker", "podman") else [path, "--version"]
        try:
            if subprocess.run(probe, capture_output=True, timeout=10).returncode == 0:
                return True
        except (OSError, subprocess.TimeoutExpired):
            continue
    return False


@functools.lru_cache(maxsize=16)
def _version(cmd: tuple) -> str:
    if not cmd:
        return "unavailable"
    try:
        out = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[-1].split()[-1] if text else "unknown"


# -------------------------------------------------------------------- cwltool
_JOB_CMD = re.compile(r"\[job ([^\]]+)\] (\S+)\$ (.*)$")
_JOB_DONE = re.compile(r"\[job ([^\]]+)\] completed (\w+)")
_JOB_STATUS = re.compile(r"\[job ([^\]]+)\] exited with status: (-?\d+)")
_JOB_SIGNAL = re.compile(r"\[job ([^\]]+)\] was terminated by signal: (\S+)")
_JOB_ANY = re.compile(r"\[job ([^\]]+)\]")


class CwlLogParser:
    """Turn cwltool's log into task events: one task per command line job.

    cwltool logs ``[job NAME] DIR$ CMD`` (continued over lines ending in
    ``\\``), then ``exited with status: N`` on failure and ``completed STATUS``."""

    def __init__(self) -> None:
        self.pending: tuple[str, list[str]] | None = None  # job, command pieces
        self.exit: dict[str, int] = {}
        self.current: str | None = None

    def feed(self, line: str) -> list[TaskEvent]:
        events: list[TaskEvent] = []
        text = line.rstrip("\n")
        if self.pending is not None:
            job, pieces = self.pending
            more = text.rstrip().endswith("\\")
            pieces.append(text.strip().rstrip("\\").strip())
            if more:
                return events
            self.pending = None
            events.append(TaskEvent(key=job, name=job, cmd=_split_cmd(pieces), started=True))
            return events
        m = _JOB_CMD.search(text)
        if m:
            job, rest = m.group(1), m.group(3)
            self.current = job
            if rest.rstrip().endswith("\\"):
                self.pending = (job, [rest.rstrip().rstrip("\\").strip()])
                return events
            events.append(TaskEvent(key=job, name=job, cmd=_split_cmd([rest]), started=True))
            return events
        m = _JOB_STATUS.search(text)
        if m:
            self.exit[m.group(1)] = int(m.group(2))
        m2 = _JOB_SIGNAL.search(text)
        if m2:
            self.exit[m2.group(1)] = 128 + (_signum(m2.group(2)))
        m = _JOB_DONE.search(text)
        if m:
            job, status = m.group(1), m.group(2)
            code = self.exit.get(job, 0 if status == "success" else 1)
            events.append(TaskEvent(key=job, finished=True, exit_code=code, log_line=text))
            if self.current == job:
                self.current = None
            return events
        m = _JOB_ANY.search(text)
        key = m.group(1) if m else self.current
        if key is not None:
            events.append(TaskEvent(key=key, log_line=text))
        return events


def _signum(name: str) -> int:
    import signal

    try:
        return int(name)
    except ValueError:
        try:
            return int(getattr(signal, name))
        except (AttributeError, TypeError):
            return 0


def _split_cmd(pieces: list[str]) -> list[str]:
    import shlex

    text = " ".join(p for p in pieces if p)
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


class Cwltool(Engine):
    name = "cwltool"
    params = {
        "parallel": Param("--parallel", _bool, "flag", False, "run independent jobs in parallel"),
        "on-error": Param("--on-error", _choice("stop", "continue"), "value", "stop"),
        "relax-path-checks": Param("--relax-path-checks", _bool, "flag", False),
        "eval-timeout": Param("--eval-timeout", _int(1, 600), "value", 60),
        "strict-memory-limit": Param("--strict-memory-limit", _bool, "flag", False),
    }

    def version(self) -> str:
        from importlib.metadata import version

        return version("cwltool")

    def base_command(self) -> list[str]:
        # (``python -m cwltool`` drops the exit status; cwltool.main.run returns it)
        return [sys.executable, "-c", "import sys; from cwltool.main import run; sys.exit(run())"]

    def command(
        self, workdir: Path, workflow: str, job: Path, params: dict, preserve: tuple = ()
    ) -> list[str]:
        # the launcher gives each tool its own stdout/stderr and records its start and end
        cmd = [
            sys.executable,
            str(LAUNCHER),
            str(workdir / "tasks"),
            "--disable-color",
            "--outdir",
            str(workdir / "outputs"),
            "--tmpdir-prefix",
            str(workdir / "tmp") + "/",
            "--tmp-outdir-prefix",
            str(workdir / "tmp") + "/",
        ]
        if not self.use_containers():
            cmd.append("--no-container")
        for name in preserve:
            cmd += ["--preserve-environment", name]
        cmd += self.param_flags(params)
        cmd += ["--", workflow, str(job)]
        return cmd

    def new_parser(self) -> NullParser:
        return NullParser()  # tasks come from the launcher's events (tasks/events.jsonl)

    def support_files(self) -> list[str]:
        return [str(LAUNCHER)]


class NullParser:
    def feed(self, line: str) -> list[TaskEvent]:
        return []


# ----------------------------------------------------------------------- Toil
_TOIL_ISSUED = re.compile(
    r"Issued job '([^']+)' (\S+) (kind-\S+).*?with job batch system ID: (\d+)"
)
_TOIL_FAILED = re.compile(r"Job failed with exit value (-?\d+): '([^']+)' (\S+) (kind-\S+)")
_TOIL_STEP_DONE = re.compile(r"CWL step complete: (\S+)")


def _toil_name(desc: str) -> str:
    return desc.split("._:", 1)[0]


class ToilLogParser:
    """One task per job Toil issues to its batch system (a cluster job on Slurm).

    Tasks are keyed by Toil's job instance; CWL steps Toil chains into an
    already running job become tasks of their own when they complete."""

    def __init__(self) -> None:
        self.by_desc: dict[str, str] = {}

    def feed(self, line: str) -> list[TaskEvent]:
        text = line.rstrip("\n")
        m = _TOIL_ISSUED.search(text)
        if m:
            kind, desc, instance, batch_id = m.groups()
            self.by_desc[desc] = instance
            return [
                TaskEvent(
                    key=instance,
                    name=_toil_name(desc),
                    cmd=[kind, desc],
                    started=True,
                    log_line=text,
                    cluster_job_id=batch_id,
                )
            ]
        m = _TOIL_FAILED.search(text)
        if m:
            code, _kind, _desc, instance = m.groups()
            return [TaskEvent(key=instance, finished=True, exit_code=int(code), log_line=text)]
        m = _TOIL_STEP_DONE.search(text)
        if m:
            desc = m.group(1)
            key = self.by_desc.get(desc, desc)
            return [
                TaskEvent(
                    key=key,
                    name=_toil_name(desc),
                    cmd=["CWLJob", desc],
                    started=True,
                    finished=True,
                    exit_code=0,
                    log_line=text,
                )
            ]
        return []


class Toil(Engine):
    name = "toil"
    params = {
        "batchSystem": Param(
            "--batchSystem",
            _choice("single_machine", "slurm"),
            "value",
            "single_machine",
            "where jobs run (slurm: the node's cluster)",
        ),
        "maxCores": Param("--maxCores", _int(1, 4096), "value"),
        "maxMemory": Param("--maxMemory", _memory, "value"),
        "defaultCores": Param("--defaultCores", _int(1, 256), "value"),
        "defaultMemory": Param("--defaultMemory", _memory, "value"),
        "retryCount": Param("--retryCount", _int(0, 10), "value", 1),
        "parallel": Param("--parallel", _bool, "flag", False),  # accepted for parity; ignored
    }

    def base_command(self) -> list[str]:
        configured = self.settings.wes_toil_bin
        if configured:
            return [configured] if Path(configured).exists() else []
        for var in (Path(self.settings.var_dir).resolve(), REPO / "var"):
            local = var / "venvs" / "toil" / "bin" / "toil-cwl-runner"
            if local.exists():  # (the real path: it is what the sandbox mounts)
                return [str(local.resolve())]
        found = shutil.which("toil-cwl-runner")
        return [found] if found else []

    def command(
        self, workdir: Path, workflow: str, job: Path, params: dict, preserve: tuple = ()
    ) -> list[str]:
        params = dict(params)
        params.pop("parallel", None)
        params.setdefault("batchSystem", "single_machine")
        base = self.base_command()
        if not base:
            raise FileNotFoundError("toil-cwl-runner is not installed (GENOMEPORT_WES_TOIL_BIN)")
        cmd = [
            *base,
            "--logInfo",
            "--jobStore",
            f"file:{workdir / 'jobstore'}",
            "--workDir",
            str(workdir / "tmp"),
            "--outdir",
            str(workdir / "outputs"),
            "--writeLogsFromAllJobs",
            "true",
            "--writeLogs",
            str(workdir / "tasks"),
            "--clean",
            "always",
            "--cleanWorkDir",
            "always",
        ]
        if params["batchSystem"] == "slurm":
            cmd += ["--batchLogsDir", str(workdir / "tasks"), "--statePollingWait", "1"]
        if not self.use_containers():
            cmd.append("--no-container")
        for name in preserve:
            cmd += ["--preserve-environment", name]
        cmd += self.param_flags(params)
        cmd += [workflow, str(job)]
        return cmd

    def environment(self, workdir: Path, run_id: str) -> dict[str, str]:
        env = super().environment(workdir, run_id)
        base = self.base_command()
        if base:  # Toil starts its own _toil_worker from the same installation
            env["PATH"] = f"{Path(base[0]).parent}{os.pathsep}{env['PATH']}"
        args = [f"--comment=genomeport-wes-{run_id}"]
        if self.settings.wes_slurm_partition:
            args.append(f"--partition={self.settings.wes_slurm_partition}")
        env["TOIL_SLURM_ARGS"] = " ".join(args)
        return env

    def new_parser(self) -> ToilLogParser:
        return ToilLogParser()

    def cancel_cluster_jobs(self, job_ids: list) -> None:
        scancel = shutil.which("scancel")
        ids = [str(j) for j in job_ids if str(j).isdigit()]
        if scancel and ids:
            subprocess.run([scancel, *ids], capture_output=True, timeout=30)


def cluster_jobs_for(run_id: str) -> list[str]:
    """Slurm job ids tagged with this run (``--comment``), queued or running."""
    squeue = shutil.which("squeue")
    if not squeue:
        return []
    try:
        out = subprocess.run(
            [squeue, "-h", "-o", "%i %k"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    tag = f"genomeport-wes-{run_id}"
    return [ln.split()[0] for ln in out.stdout.splitlines() if ln.endswith(tag)]


ENGINES = {"cwltool": Cwltool, "toil": Toil}


def get_engine(settings: Settings, name: str | None) -> Engine:
    name = name or settings.wes_default_engine
    cls = ENGINES.get(name)
    if cls is None:
        raise InvalidInput(f"unknown workflow_engine {name!r}; supported: {', '.join(ENGINES)}")
    return cls(settings)
