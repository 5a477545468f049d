"""The WES sandbox: every workflow engine, and so every tool it starts, runs in
Debian's ``bubblewrap`` (``bwrap``) as the unprivileged user ``genomeport-run``.

What a run sees inside (everything else of the host does not exist there):

* the system read-only: ``/usr`` (and the merged ``/bin``, ``/lib*``, ``/sbin``
  links), ``/etc`` with its secrets masked (``shadow``, ``gshadow``, ``sudoers``,
  ``ssh``, ``munge``, ``ssl/private``), the Python installation the engine runs
  on and the engine's virtualenv (the node's ``.venv``, or Toil's) - never the
  node's repository, ``var/``, database, keys or configuration;
* its own run directory read-write (owned by the run user, mode 0700), a private
  ``/tmp``, ``/dev`` (null, zero, random, tty, shm) and ``/proc`` of its own PID
  namespace;
* the input files this caller may read, read-only at their own absolute paths:
  the list ``<run>/readable.json`` written by the WES service (resolved inputs,
  ``drs://`` objects, the shipped ``workflows/`` directory), or, for a run
  submitted before that file existed, every absolute File/Directory location in
  ``job.json`` (``secondaryFiles`` included) plus ``workflows/``;
* no network (``--unshare-net``: only a loopback of its own) unless the workflow
  declares ``NetworkAccess`` (``networkAccess: true``) and the node allows it
  (``wes_allow_network``); a declared requirement the node does not allow ends
  the run as EXECUTOR_ERROR before anything starts (a hint only is ignored).

How: the worker (root) starts ``prlimit`` -> ``bwrap``, which mounts the view
above in new mount, PID, IPC, UTS, cgroup and network namespaces, then runs
``setpriv`` to become the run user with no capabilities, no supplementary
groups and no new privileges before the engine starts; so the run user needs
no access to the host paths mounted for it (a Python under ``/root``, run
directories under a private ``var/``). ``--die-with-parent`` ends the sandbox
with its worker, ``--new-session`` keeps tools off the worker's terminal, and
the environment is cleared but for a short safe list. On a Slurm compute node,
where the job already runs as the run user, bwrap runs unprivileged in a user
namespace mapping that user to itself (``--disable-userns`` inside).

Why one dedicated system user rather than a fresh uid per run: Slurm (and
``sbatch``/``scancel`` accounting) needs a real account known on every compute
node; per-run uids would need an account per run on every node. Runs of the one
user are still apart: each sees only its own directory (other runs' directories
are not mounted), its own PID namespace and its own network namespace. The
user owns nothing of the node; the worker (root) creates it with
``scripts/install-system.sh`` and changes to it for each run.

Node callers (``wes_node_callers``, e.g. ``beacon-load-vcf`` loading the node's
Beacon) are trusted to write the node's database: their runs use the same
sandbox but keep the worker's user, the host network (the database may be a
TCP server) and get the node's repository (read-only, for the ``genomeport``
tool) and ``var_dir`` (read-write, SQLite) mounted - nothing else.

Limits (``wes_run_memory_mb``, ``wes_run_cpu_seconds``, ``wes_run_processes``)
are resource limits (``prlimit``: RLIMIT_AS, RLIMIT_CPU per process, RLIMIT_NPROC
per user) inherited by every process of the run; the wall-time limit
(``wes_run_wall_seconds``) is enforced by the worker, which kills the run.

Toil on Slurm: the Toil leader runs in the sandbox like cwltool, but needs the
cluster: slurmctld over TCP (``SlurmctldHost``/``SlurmctldPort`` of
``/etc/slurm/slurm.conf``) and the munge socket (``/run/munge``, mounted); it
submits jobs as the run user. It keeps a network namespace of its own with
exactly one way out: ``slurm_launcher.py`` (a node file, read-only) listens
inside on the controller's address and port and relays each connection to a
Unix socket in ``<run>/.sandbox/ctl/``, which the worker (``slurm_relay.py``)
relays to the real slurmctld and nowhere else; the database, the node's ports
and every other address stay unreachable. A controller address that is not a
loopback address is replaced by 127.0.0.1 in a per-run copy of slurm.conf bound
over it; the namespace's loopback gets a second address (127.0.0.2, added with
``ip`` before the drop to the run user) because the Slurm clients'
``getaddrinfo(AI_ADDRCONFIG)`` finds no IPv4 address where 127.0.0.1 is the
only one. The Slurm clients need nothing but slurmctld (``sacct`` would need
slurmdbd: unreachable, and Toil falls back to ``scontrol``). Each job starts
``_toil_worker`` from ``PATH``; the leader's ``PATH`` begins with
``<run>/.sandbox/bin``, whose ``_toil_worker`` re-enters the same sandbox on the
compute node (unprivileged bwrap as the run user, no network, the relay's
socket directory hidden) before Toil's own.

bubblewrap does the namespaces; what is written here is only the choice of
mounts and the command line (no library builds bwrap command lines).
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.settings import Settings

RUN_USER = "genomeport-run"
REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# masked inside /etc even though the run user could not read most of them
ETC_SECRETS = (
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh",
    "/etc/munge",
    "/etc/ssl/private",
    "/etc/genomeport",
)
SAFE_ENV = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "HOME",
    "USER",
    "LOGNAME",
    "SLURM_CONF",
    "TOIL_SLURM_ARGS",
)
MUNGE = "/run/munge"
LOOPBACK_ALIAS = "127.0.0.2"
SLURM_LAUNCHER = Path(__file__).resolve().parent / "slurm_launcher.py"
RELAY_DIR = ".sandbox/ctl"  # the relay's socket: mounted for the leader, hidden from jobs
SETPRIV = "/usr/bin/setpriv"
MAX_DOCUMENT = 1 << 20  # larger attachments are data, not CWL documents


class SandboxError(RuntimeError):
    """The sandbox cannot be set up: the run must not start."""


class NetworkRefused(SandboxError):
    """The workflow requires network access this node does not allow."""


@dataclass
class Launch:
    """What the worker executes (as itself: bwrap drops to ``user`` inside)."""

    argv: list[str]
    env: dict[str, str]
    user: int | None = None  # the uid tools run as (setpriv inside; bwrap starts as root)
    group: int | None = None
    network: bool = False
    readable: list[str] = field(default_factory=list)
    # the Toil leader's way to slurmctld: (Unix socket, slurmctld host, port); the
    # worker relays that socket to that address while the run lives (slurm_relay.Relay)
    relay: tuple[str, str, int] | None = None

    def start_relay(self):
        """The worker's relay for this launch (``close()`` it after the run), or None."""
        if self.relay is None:
            return None
        from server.wes.slurm_relay import Relay

        path, host, port = self.relay
        return Relay(Path(path), (host, port), self.user, self.group)

    def summary(self) -> str:
        if not self.argv or not self.argv[0].endswith("prlimit"):
            return "sandbox: none (GENOMEPORT_WES_SANDBOX=none)"
        who = RUN_USER if self.user is not None else "the worker's user (node caller)"
        net = "shared" if self.network else ("slurmctld only" if self.relay else "none")
        return (
            f"sandbox: bwrap as {who}; network {net}; {len(self.readable)} input path(s) read-only"
        )


# ------------------------------------------------------------------ the user
def run_account() -> tuple[int, int]:
    """(uid, gid) of the run user, or SandboxError."""
    try:
        entry = pwd.getpwnam(RUN_USER)
    except KeyError:
        raise SandboxError(
            f"the sandbox user {RUN_USER!r} does not exist; create it with "
            "scripts/install-system.sh (as root)"
        ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise SandboxError(f"the sandbox user {RUN_USER!r} must not be root")
    return entry.pw_uid, entry.pw_gid


def bwrap_path() -> str:
    path = shutil.which("bwrap")
    if not path:
        raise SandboxError("bubblewrap (bwrap) is not installed; run scripts/install-system.sh")
    return path


# ------------------------------------------------------------ what may be read
def _local(location: Any) -> str | None:
    if not isinstance(location, str):
        return None
    if location.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        return unquote(urlsplit(location).path)
    return location if location.startswith("/") else None


def _locations(node: Any) -> Iterator[str]:
    """Every ``location``/``path`` string of a File or Directory in a job object."""
    if isinstance(node, dict):
        if node.get("class") in ("File", "Directory"):
            for key in ("location", "path"):
                if isinstance(node.get(key), str):
                    yield node[key]
        for value in node.values():
            yield from _locations(value)
    elif isinstance(node, list):
        for value in node:
            yield from _locations(value)


def job_locations(job: Any) -> list[str]:
    """Every absolute local File/Directory location in a job object."""
    return [local for local in map(_local, _locations(job)) if local]


def readable_paths(workdir: Path, workflow: str = "") -> list[str]:
    """Host paths outside the run directory this run may read.

    ``<run>/readable.json`` (written by the WES service from the resolved
    inputs) wins; without it, the job's absolute locations and the shipped
    workflows. Paths inside the run directory, and missing paths, are dropped.
    """
    workdir = Path(workdir).resolve()
    listed = workdir / "readable.json"
    raw: list[str] = []
    if listed.is_file():
        try:
            value = json.loads(listed.read_text("utf-8"))
        except ValueError:
            raise SandboxError(f"{listed} is not valid JSON") from None
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise SandboxError(f"{listed} must be a JSON list of paths")
        raw = list(value)
    else:
        job = workdir / "job.json"
        if job.is_file():
            try:
                raw = job_locations(json.loads(job.read_text("utf-8")))
            except ValueError:
                raw = []
        raw.append(str(WORKFLOWS))
    local_workflow = _local(workflow.partition("#")[0]) if workflow else None
    if local_workflow and Path(local_workflow).resolve().is_relative_to(WORKFLOWS):
        raw.append(str(WORKFLOWS))
    out: list[str] = []
    for item in raw:
        if not item.startswith("/") or "\x00" in item:
            continue
        path = Path(os.path.normpath(item))
        if path == workdir or path.is_relative_to(workdir) or not path.exists():
            continue
        if str(path) not in out:
            out.append(str(path))
    return sorted(out)


# -------------------------------------------------------------- NetworkAccess
def _network_in(node: Any) -> tuple[bool, bool]:
    """(required, hinted) NetworkAccess anywhere in a CWL document."""
    required = hinted = False

    def declared(entry: Any) -> bool:
        if not isinstance(entry, dict):
            return False
        value = entry.get("networkAccess")
        # an expression may turn it on at run time: treat it as declared
        return value is True or (isinstance(value, str) and ("$(" in value or "${" in value))

    def reqs(value: Any) -> Iterable[dict]:
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and str(item.get("class", "")).endswith("NetworkAccess"):
                    yield item
        elif isinstance(value, dict):
            for key, item in value.items():
                if str(key).endswith("NetworkAccess") and isinstance(item, dict):
                    yield item

    def walk(n: Any) -> None:
        nonlocal required, hinted
        if isinstance(n, dict):
            if any(declared(r) for r in reqs(n.get("requirements"))):
                required = True
            if any(declared(r) for r in reqs(n.get("hints"))):
                hinted = True
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    walk(node)
    return required, hinted


def declares_network(documents: Iterable[Path]) -> bool:
    """Whether any of the CWL documents requires NetworkAccess."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    for doc in documents:
        try:
            if Path(doc).stat().st_size > MAX_DOCUMENT:
                continue  # an input file, not a CWL document
            text = Path(doc).read_text("utf-8")
            data = json.loads(text) if doc.suffix == ".json" else yaml.load(text)
        except Exception:  # noqa: BLE001 - the engine reports a broken document itself
            continue
        if _network_in(data)[0]:
            return True
    return False


def workflow_documents(workdir: Path, workflow: str) -> list[Path]:
    """The CWL documents of a run: its workflow file, every attached document,
    and the shipped workflow's directory."""
    docs: list[Path] = []
    local = _local(workflow.partition("#")[0]) if workflow else None
    if local and Path(local).is_file():
        docs.append(Path(local))
        if Path(local).resolve().is_relative_to(WORKFLOWS):
            docs += sorted(Path(local).resolve().parent.glob("*.cwl"))
    inputs = Path(workdir) / "inputs"
    if inputs.is_dir():
        docs += sorted(
            p
            for p in inputs.rglob("*")
            if p.is_file() and p.suffix in (".cwl", ".yml", ".yaml", ".json")
        )
    return list(dict.fromkeys(docs))


def remote_locations(workdir: Path, workflow: str) -> list[str]:
    """http(s) documents or inputs the engine itself would download."""
    found = [workflow] if workflow.startswith(("http://", "https://")) else []
    job = Path(workdir) / "job.json"
    if job.is_file():
        try:
            data = json.loads(job.read_text("utf-8"))
        except ValueError:
            data = None
        found += [loc for loc in _locations(data) if loc.startswith(("http://", "https://"))]
    return found


# ------------------------------------------------------------------- binding
def _system_args() -> list[str]:
    args: list[str] = []
    for d in SYSTEM_DIRS:
        p = Path(d)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), d]
        elif p.is_dir():
            args += ["--ro-bind", d, d]
    args += ["--ro-bind", "/etc", "/etc"]
    for secret in ETC_SECRETS:
        p = Path(secret)
        if p.is_symlink():
            continue
        if p.is_dir():
            args += ["--tmpfs", secret]
        elif p.exists():
            args += ["--ro-bind", "/dev/null", secret]
    return args


def python_dirs(executables: Iterable[str] = ()) -> list[str]:
    """The Python installation and virtualenvs the engine needs, read-only."""
    dirs = {str(Path(sys.base_prefix).resolve()), str(Path(sys.prefix).resolve())}
    for exe in executables:
        venv = Path(exe).resolve().parent.parent
        if (venv / "pyvenv.cfg").is_file():
            dirs.add(str(venv))
            home = _venv_home(venv)
            if home:
                dirs.add(home)
    system = ("/usr", "/bin", "/lib", "/lib64", "/sbin")
    return sorted(d for d in dirs if not any(d == s or d.startswith(s + "/") for s in system))


def _venv_home(venv: Path) -> str | None:
    for line in (venv / "pyvenv.cfg").read_text("utf-8").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home":
            return str(Path(value.strip()).resolve().parent)
    return None


def clean_env(env: dict[str, str], workdir: Path, *, keep: Iterable[str] = ()) -> dict[str, str]:
    allowed = set(SAFE_ENV) | set(keep)
    out = {k: v for k, v in env.items() if k in allowed}
    out["HOME"] = str(workdir)
    out["TMPDIR"] = str(workdir / "tmp")
    out.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    out.setdefault("LANG", "C.UTF-8")
    return out


def _inside(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def bwrap_args(
    *,
    workdir: Path,
    readable: Iterable[str],
    python: Iterable[str],
    network: bool,
    uid: int | None,
    gid: int | None,
    env: dict[str, str] | None,
    extra_ro: Iterable[str] = (),
    extra_rw: Iterable[str] = (),
    cluster_client: bool = False,
    privileged: bool = True,
    masks: Iterable[str] = (),
    hide: Iterable[str] = (),
    files: Iterable[tuple[str, str]] = (),
    loopback_alias: bool = False,
) -> list[str]:
    """The bwrap command line, up to and including ``--``.

    ``privileged``: bwrap starts as root (the worker) and mounts, then
    ``setpriv`` becomes ``uid``/``gid`` with no capabilities and no new
    privileges before the command runs; the run user then needs no access to the
    host paths. Otherwise (a Toil job on a compute node, already the run user)
    bwrap runs unprivileged in a user namespace mapping the user to itself.
    ``masks``: host directories hidden (an empty tmpfs) wherever a mounted
    path contains them (the node's ``var/``, the other runs). ``hide``: paths
    inside the run directory replaced by an empty tmpfs. ``files``: (host file,
    path inside) bound read-only over the view (a per-run slurm.conf).
    ``loopback_alias``: give the new network namespace's loopback a second
    address (``127.0.0.2``) before dropping to the run user: glibc's
    ``getaddrinfo(AI_ADDRCONFIG)``, which the Slurm clients use, resolves no
    IPv4 address at all where 127.0.0.1 is the only one."""
    args = [bwrap_path()]
    if not privileged:
        args += ["--unshare-user", "--disable-userns"]
        if uid is not None:
            args += ["--uid", str(uid), "--gid", str(gid)]
    args += [
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
    ]
    if not network:
        args.append("--unshare-net")
    args += _system_args()
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    mounted = [d for d in SYSTEM_DIRS] + ["/etc", "/proc", "/dev"]
    made: set[str] = set()

    def parents(path: str) -> list[str]:
        out = []
        for anc in reversed(Path(path).parents):
            a = str(anc)
            if a == "/" or a in made or _inside(a, mounted):
                continue
            made.add(a)
            out += ["--perms", "0755", "--dir", a]
        return out

    if cluster_client and Path(MUNGE).is_dir():  # the munge socket: Slurm's authentication
        args += parents(MUNGE) + ["--ro-bind", MUNGE, MUNGE]
        mounted.append(MUNGE)
    for src, dst in files:
        args += ["--ro-bind", src, dst]
    binds = [(p, "--ro-bind") for p in list(python) + list(readable) + list(extra_ro)]
    binds += [(p, "--bind") for p in extra_rw]
    for path, flag in sorted(dict(binds).items(), key=lambda kv: (kv[0].count("/"), kv[0])):
        if path in mounted:
            continue
        args += parents(path) + [flag, path, path]
        mounted.append(path)
    for mask in sorted(set(masks)):
        if any(_inside(mask, [p]) for p, _ in binds):
            args += ["--tmpfs", mask]  # (dirs below it are made again for the run directory)
            made = {m for m in made if not _inside(m, [mask])}
            mounted = [m for m in mounted if not _inside(m, [mask])]
    args += parents(str(workdir)) + ["--bind", str(workdir), str(workdir), "--chdir", str(workdir)]
    for path in hide:
        args += ["--tmpfs", path]
    if env is not None:
        args.append("--clearenv")
        for key, value in sorted(env.items()):
            args += ["--setenv", key, value]
    if privileged and uid is not None:
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    if loopback_alias:
        ip = shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin")
        if not ip:
            raise SandboxError("ip (iproute2) is not installed; run scripts/install-system.sh")
        args += [
            "--cap-add",
            "CAP_NET_ADMIN",
            "--",
            "/bin/sh",
            "-c",
            f'{shlex.quote(ip)} addr add {LOOPBACK_ALIAS}/8 dev lo && exec "$@"',
            "sh",
        ]
    else:
        args.append("--")
    if privileged and uid is not None:
        args += [
            SETPRIV,
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
    return args


def limit_args(settings: Settings) -> list[str]:
    """``prlimit`` in front of bwrap: limits every process of the run inherits."""
    prlimit = shutil.which("prlimit")
    if not prlimit:
        raise SandboxError("prlimit (util-linux) is not installed")
    args = [prlimit]
    if settings.wes_run_memory_mb > 0:
        args.append(f"--as={settings.wes_run_memory_mb * 1024 * 1024}")
    if settings.wes_run_cpu_seconds > 0:
        args.append(f"--cpu={settings.wes_run_cpu_seconds}")
    if settings.wes_run_processes > 0:
        args.append(f"--nproc={settings.wes_run_processes}")
    return [*args, "--"]


def limits(settings: Settings) -> dict[str, Any]:
    """The per-run limits, as listed in /service-info."""
    return {
        "wall_seconds": settings.wes_run_wall_seconds or None,
        "cpu_seconds_per_process": settings.wes_run_cpu_seconds or None,
        "memory_mb_per_process": settings.wes_run_memory_mb or None,
        "processes": settings.wes_run_processes or None,
    }


def describe(settings: Settings) -> dict[str, Any]:
    """The sandbox block of /service-info."""
    if settings.wes_sandbox == "none":
        return {
            "kind": "none",
            "limits": limits(settings),
            "note": "tools are isolated by the node's container engine",
        }
    return {
        "kind": "bwrap",
        "user": RUN_USER,
        "network": "workflows declaring NetworkAccess" if settings.wes_allow_network else "none",
        "filesystem": "read-only system, the run directory, the caller's inputs read-only",
        "limits": limits(settings),
    }


# ----------------------------------------------------------------- preparing
def prepare_workdir(workdir: Path, uid: int, gid: int) -> None:
    """Hand the run directory to the run user (0700: no other run can enter)."""
    os.chown(workdir, uid, gid)
    os.chmod(workdir, 0o700)
    for root, dirs, files in os.walk(workdir):
        for name in dirs + files:
            p = os.path.join(root, name)
            os.lchown(p, uid, gid)


@functools.lru_cache(maxsize=4)
def _probe(uid: int, gid: int) -> str:
    """'' when bwrap starts a process as the run user here, else the reason."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="genomeport-probe-") as tmp:
        try:
            args = bwrap_args(
                workdir=Path(tmp),
                readable=(),
                python=(),
                network=False,
                uid=uid,
                gid=gid,
                env={"PATH": "/usr/bin:/bin"},
            )
        except SandboxError as exc:
            return str(exc)
        try:
            done = subprocess.run(
                [*args, "/bin/sh", "-c", "id -u"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"bwrap could not be started: {exc}"
    if done.returncode != 0 or done.stdout.strip() != str(uid):
        return f"bwrap does not work on this host: {(done.stderr or done.stdout).strip()[-300:]}"
    return ""


def check(settings: Settings) -> None:
    """Fail closed: raise SandboxError unless runs can be sandboxed here."""
    if settings.wes_sandbox == "none":
        return
    if settings.wes_sandbox != "bwrap":
        raise SandboxError(f"unknown wes_sandbox {settings.wes_sandbox!r} (bwrap or none)")
    bwrap_path()
    if not os.access(SETPRIV, os.X_OK):
        raise SandboxError(f"{SETPRIV} (util-linux) is missing")
    uid, gid = run_account()
    if os.geteuid() != 0:
        raise SandboxError(
            f"the WES worker must run as root to start runs as {RUN_USER!r} "
            "(or set GENOMEPORT_WES_SANDBOX=none inside a container engine that isolates tools)"
        )
    reason = _probe(uid, gid)
    if reason:
        _probe.cache_clear()
        raise SandboxError(reason)


def toil_worker_wrapper(workdir: Path, args: list[str], real_worker: str) -> Path:
    """``<run>/.sandbox/bin/_toil_worker``: Toil's worker re-entering the
    sandbox on a compute node (bwrap as the run user, no network)."""
    bindir = workdir / ".sandbox" / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    script = bindir / "_toil_worker"
    worker = shlex.quote(real_worker)
    script.write_text(
        "#!/bin/sh\n"
        "# Toil's worker. A Slurm job (on a compute node) enters the run's sandbox\n"
        "# (bwrap as the run user, no network); a job Toil runs on its leader is\n"
        "# already inside it.\n"
        f'[ -n "$SLURM_JOB_ID" ] || exec {worker} "$@"\n'
        f'exec {shlex.join(args)} {worker} "$@"\n',
        "utf-8",
    )
    script.chmod(0o755)
    return bindir


def wrap(
    settings: Settings,
    *,
    workdir: Path,
    command: list[str],
    env: dict[str, str],
    workflow: str = "",
    trusted: bool = False,
    extra_rw: Iterable[str] = (),
    engine_executables: Iterable[str] = (),
    toil_worker: str | None = None,
    cluster_client: bool = False,
    keep_env: Iterable[str] = (),
    support_files: Iterable[str] = (),
    cluster_relay: bool = True,
) -> Launch:
    """The sandboxed launch of ``command`` for one run (SandboxError: refuse it).

    ``cluster_client`` (the Toil leader on Slurm): a network namespace of its
    own whose one way out is slurmctld, through ``slurm_launcher.py`` inside and
    the worker's relay (``Launch.start_relay``); ``cluster_relay=False`` shares
    the host network instead (the former behaviour, kept to show the difference)."""
    workdir = Path(workdir).resolve()
    if settings.wes_sandbox == "none":
        return Launch(argv=list(command), env=dict(env))
    check(settings)
    uid, gid = run_account()
    readable = readable_paths(workdir, workflow)
    required = declares_network(workflow_documents(workdir, workflow))
    if required and not settings.wes_allow_network:
        raise NetworkRefused(
            "the workflow requires NetworkAccess, which this node does not allow "
            "(GENOMEPORT_WES_ALLOW_NETWORK); tools here run without network"
        )
    remote = remote_locations(workdir, workflow)
    if remote and not (settings.wes_allow_network or trusted):
        raise NetworkRefused(
            f"{remote[0]} is fetched by the engine, which has no network in the sandbox; "
            "attach the workflow and its files, or use drs:// or server paths for inputs"
        )
    network = bool(
        ((required or remote) and settings.wes_allow_network)
        or trusted
        or (cluster_client and not cluster_relay)
    )
    sandbox_env = clean_env(env, workdir, keep=keep_env)
    python = python_dirs(engine_executables)
    extra_ro: list[str] = list(support_files)  # (the cwltool launcher: one file of the node)
    masks: list[str] = []
    run_uid: int | None = uid
    run_gid: int | None = gid
    if trusted:
        # node callers: the node's own tool (repository, read-only) and its database
        run_uid = run_gid = None
        extra_ro.append(str(REPO))
        sandbox_env["USER"] = sandbox_env["LOGNAME"] = pwd.getpwuid(os.geteuid()).pw_name
    else:
        masks = [str(Path(settings.var_dir).resolve()), str(settings.effective_wes_work_dir)]
        sandbox_env["USER"] = sandbox_env["LOGNAME"] = RUN_USER
    if toil_worker:
        job_args = bwrap_args(
            workdir=workdir,
            readable=readable,
            python=python,
            network=False,
            uid=run_uid,
            gid=run_gid,
            env=None,
            extra_ro=extra_ro,
            extra_rw=extra_rw,
            privileged=False,
            masks=masks,
            hide=[str(workdir / RELAY_DIR)] if cluster_client else (),
        )
        job_args = [a for a in job_args if a != "--die-with-parent"]  # slurmstepd is the parent
        bindir = toil_worker_wrapper(workdir, job_args, toil_worker)
        sandbox_env["PATH"] = f"{bindir}{os.pathsep}{sandbox_env['PATH']}"
    relay: tuple[str, str, int] | None = None
    files: list[tuple[str, str]] = []
    if cluster_client and not network:
        command, relay, files = _cluster_relay(workdir, command)
        extra_ro.append(str(SLURM_LAUNCHER))
    if not trusted:
        prepare_workdir(workdir, uid, gid)
    argv = [
        *limit_args(settings),
        *bwrap_args(
            workdir=workdir,
            readable=readable,
            python=python,
            network=network,
            uid=run_uid,
            gid=run_gid,
            env=sandbox_env,
            extra_ro=extra_ro,
            extra_rw=extra_rw,
            cluster_client=cluster_client,
            masks=masks,
            files=files,
            loopback_alias=relay is not None,
        ),
        *command,
    ]
    return Launch(
        argv=argv,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        user=run_uid,
        group=run_gid,
        network=network,
        readable=readable,
        relay=relay,
    )


def _cluster_relay(
    workdir: Path, command: list[str]
) -> tuple[list[str], tuple[str, str, int], list[tuple[str, str]]]:
    """The leader's command behind ``slurm_launcher.py``, the relay it needs,
    and the per-run slurm.conf to bind (when slurmctld is not on a loopback)."""
    from server.wes import slurm_relay

    conf = slurm_relay.conf_path()
    try:
        ctl = slurm_relay.controller(conf)
    except (OSError, ValueError) as exc:
        raise SandboxError(f"cannot find slurmctld in {conf}: {exc}") from None
    ctl_dir = workdir / RELAY_DIR
    if ctl_dir.is_symlink():
        raise SandboxError(f"{ctl_dir} is a symbolic link")
    ctl_dir.mkdir(parents=True, exist_ok=True)
    files: list[tuple[str, str]] = []
    listen = ctl.address
    if ctl.loopback:
        listen = slurm_relay.LOOPBACK if ctl.address == "localhost" else ctl.address
    else:
        copy = slurm_relay.leader_conf(conf, workdir / ".sandbox" / "slurm.conf", ctl)
        files.append((str(copy), str(conf)))
        listen = slurm_relay.LOOPBACK
    sock = str(ctl_dir / "slurmctld.sock")
    wrapped = [sys.executable, str(SLURM_LAUNCHER), listen, str(ctl.port), sock, "--", *command]
    return wrapped, (sock, ctl.address, ctl.port), files
