"""The CWL graph loader's rules (server.wes.graph, server.wes.remote).

Each attack is also run with the protection switched off, to show that the
same document really makes the loader read the file or follow the URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.errors import InvalidInput
from server.settings import Settings
from server.wes import graph, inputs, remote
from tests.support.cwl import STEP_OUT, import_tool, one_step
from tests.unit.wes.conftest import CAT as TOOL
from tests.unit.wes.httpfixture import Site, make_tls

SECRET = "top-secret-key-material\n"


def wf_with_default(location: str, extra: str = "") -> str:
    return f"""\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: cat
inputs:
  f:
    type: File
    inputBinding: {{position: 1}}
    default:
      class: File
      location: {location}
{extra}outputs:
  out: stdout
"""


@pytest.fixture
def secret(tmp_path) -> Path:
    """A server file no caller may read (stands in for var/signing.key)."""
    path = tmp_path / "var" / "signing.key"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


@pytest.fixture
def run(tmp_path):
    workdir = tmp_path / "wes" / "run1"
    (workdir / "inputs").mkdir(parents=True)
    return workdir


def attach(run: Path, name: str, text: str) -> str:
    path = run / "inputs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def load(run: Path, workflow: str, settings: Settings | None = None, **kw) -> graph.Graph:
    return graph.load(settings or Settings(), workflow, run, run / "inputs", **kw)


def unguarded(monkeypatch):
    """Switch the protection off: schema-salad's own fetcher, no literal check."""
    from schema_salad.fetcher import DefaultFetcher

    monkeypatch.setattr(graph, "_fetcher_constructor", lambda scope: DefaultFetcher)
    monkeypatch.setattr(graph, "check_literals", lambda *a, **k: None)


def loaded_text(run: Path, workflow: str) -> str:
    """The whole loaded graph as text (what the engine would work from)."""
    graph.import_cwltool()
    from cwltool.load_tool import load_tool

    scope = graph.Scope(Settings(), run / "inputs")
    todo, docs = [load_tool(Path(workflow).as_uri(), graph._loading_context(scope))], []
    while todo:
        tool = todo.pop()
        docs.append(tool.tool)
        todo += [s.embedded_tool for s in getattr(tool, "steps", [])]
    return json.dumps(docs, default=str)


# ------------------------------------------------------------------ defaults
class TestDefaults:
    def test_default_file_outside_is_refused_and_named(self, run, secret):
        wf = attach(run, "wf.cwl", wf_with_default(str(secret)))
        with pytest.raises(InvalidInput) as exc:
            load(run, wf)
        assert str(secret) in str(exc.value) and "inputs/f/default" in str(exc.value)
        assert "wf.cwl" in str(exc.value)

    def test_default_etc_passwd_refused(self, run):
        wf = attach(run, "wf.cwl", wf_with_default("file:///etc/passwd"))
        with pytest.raises(InvalidInput, match="/etc/passwd"):
            load(run, wf)

    def test_relative_default_escaping_the_run_is_refused(self, run, secret):
        rel = "../../../var/signing.key"
        assert (run / "inputs" / rel).resolve() == secret
        wf = attach(run, "wf.cwl", wf_with_default(rel))
        with pytest.raises(InvalidInput, match="outside"):
            load(run, wf)

    def test_same_default_passes_without_the_protection(self, run, secret, monkeypatch):
        wf = attach(run, "wf.cwl", wf_with_default(str(secret)))
        unguarded(monkeypatch)
        assert load(run, wf).workflow == wf  # the engine would get the server's key

    def test_default_attachment_and_input_root_allowed(self, run, tmp_path):
        data = tmp_path / "data"
        data.mkdir()
        (data / "a.bam").write_text("x")
        (data / "a.bam.bai").write_text("i")
        attach(run, "in.txt", "hello")
        wf = attach(run, "wf.cwl", wf_with_default("in.txt"))
        assert load(run, wf).readable == set()
        wf2 = attach(run, "wf2.cwl", wf_with_default(str(data / "a.bam")))
        got = load(run, wf2, Settings(wes_input_roots=(str(data),)))
        assert got.readable == {str(data / "a.bam")}

    def test_secondary_files_of_a_default_are_checked(self, run, secret):
        attach(run, "a.bam", "x")
        extra = f"      secondaryFiles:\n        - {{class: File, location: {secret}}}\n"
        wf = attach(run, "wf.cwl", wf_with_default("a.bam", extra))
        with pytest.raises(InvalidInput) as exc:
            load(run, wf)
        assert str(secret) in str(exc.value) and "secondaryFiles" in str(exc.value)

    def test_step_default_is_checked(self, run, secret):
        attach(run, "tool.cwl", TOOL)
        wf = attach(
            run,
            "wf.cwl",
            f"""\
cwlVersion: v1.2
class: Workflow
inputs: []
outputs: []
steps:
  s:
    run: tool.cwl
    in:
      f: {{default: {{class: File, location: {secret}}}}}
    out: [out]
""",
        )
        with pytest.raises(InvalidInput, match="signing.key"):
            load(run, wf)

    def test_initial_workdir_literal_file_is_checked(self, run, secret):
        wf = attach(run, "wf.cwl", key_tool(f"{{class: File, location: {secret}, basename: key}}"))
        with pytest.raises(InvalidInput, match="InitialWorkDirRequirement|requirements"):
            load(run, wf)

    @pytest.mark.parametrize(
        "loc", ["https://example.org/x.bam", "drs://127.0.0.1/DK0001.bam", "s3://bucket/key"]
    )
    def test_remote_locations_in_documents_are_refused(self, run, loc):
        wf = attach(run, "wf.cwl", wf_with_default(loc))
        with pytest.raises(InvalidInput, match="workflow_params|outside|not allowed"):
            load(run, wf)

    def test_no_existence_oracle(self, run, tmp_path):
        """A missing and an existing forbidden file give the same answer."""
        messages = []
        for loc in ("/etc/passwd", "/etc/does-not-exist-xyz"):
            wf = attach(run, "wf.cwl", wf_with_default(loc))
            with pytest.raises(InvalidInput) as exc:
                load(run, wf)
            messages.append(str(exc.value).replace(loc, "X"))
        assert messages[0] == messages[1]


def key_tool(entry: str) -> str:
    """A tool that prints ``key``, the file its InitialWorkDirRequirement stages
    from ``entry`` (the listing's one item, YAML)."""
    return f"""\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [cat, key]
requirements:
  InitialWorkDirRequirement:
    listing:
      - {entry}
inputs: []
outputs: []
"""


def including(secret) -> str:
    """A tool whose working directory holds ``secret`` through ``$include``."""
    return key_tool(f"entryname: key\n        entry:\n          $include: {secret}")


# ------------------------------------------------------- document references
class TestReferences:
    def test_include_of_a_server_file_refused(self, run, secret):
        wf = attach(run, "wf.cwl", including(secret))
        with pytest.raises(InvalidInput) as exc:
            load(run, wf)
        assert str(secret) in str(exc.value) and "wf.cwl" in str(exc.value)

    def test_include_reads_the_file_without_the_protection(self, run, secret, monkeypatch):
        wf = attach(run, "wf.cwl", including(secret))
        unguarded(monkeypatch)
        assert "top-secret-key-material" in loaded_text(run, wf)

    def test_import_of_a_server_file_refused_and_read_without(self, run, tmp_path, monkeypatch):
        stolen = tmp_path / "var" / "types.yml"
        stolen.parent.mkdir(exist_ok=True)
        stolen.write_text(
            "- name: Stolen\n  type: record\n  fields:\n"
            "    - {name: secret_field_xyz, type: string}\n"
        )
        wf = attach(run, "wf.cwl", import_tool(stolen))
        with pytest.raises(InvalidInput, match="types.yml"):
            load(run, wf)
        unguarded(monkeypatch)
        assert "secret_field_xyz" in loaded_text(run, wf)

    def test_run_reference_to_a_server_path_refused(self, run, tmp_path, monkeypatch):
        elsewhere = tmp_path / "other-run" / "inputs" / "tool.cwl"
        elsewhere.parent.mkdir(parents=True)
        elsewhere.write_text(TOOL.replace("cat", "cat_from_another_run"))
        wf = attach(run, "wf.cwl", one_step(elsewhere))
        with pytest.raises(InvalidInput) as exc:
            load(run, wf)
        assert str(elsewhere) in str(exc.value) and "wf.cwl" in str(exc.value)
        unguarded(monkeypatch)
        assert "cat_from_another_run" in loaded_text(run, wf)

    def test_relative_run_reference_inside_the_attachments_is_fine(self, run):
        attach(run, "tools/tool.cwl", TOOL)
        wf = attach(run, "wf.cwl", one_step("tools/tool.cwl"))
        assert load(run, wf).workflow == wf

    def test_run_reference_to_a_url_off_the_allow_list_refused(self, run):
        wf = attach(run, "wf.cwl", one_step("https://not-listed.example/tool.cwl"))
        with pytest.raises(InvalidInput, match="not-listed.example"):
            load(run, wf)

    def test_shipped_workflow_loads_and_its_directory_is_readable(self, run):
        shipped = inputs.shipped_workflows()["variant-calling"]
        got = load(run, str(shipped))
        assert got.workflow == str(shipped)
        assert got.readable == {str(shipped.parent)}
        assert {".bai", ".fai"} <= got.patterns

    def test_invalid_cwl_is_a_400(self, run):
        wf = attach(run, "wf.cwl", "cwlVersion: v1.2\nclass: CommandLineTool\ninputs: 3\n")
        with pytest.raises(InvalidInput, match="not valid CWL"):
            load(run, wf)


# -------------------------------------------------------------- remote graphs
@pytest.fixture
def sites(monkeypatch):
    """wf.test (allow-listed, treated as public in this test only) on 127.0.0.1,
    internal.test (allow-listed, private) on 127.0.0.2, other.test not listed."""
    public, internal = Site("127.0.0.1"), Site("127.0.0.2")
    real = inputs._public_ip
    monkeypatch.setattr(inputs, "_public_ip", lambda a: a == "127.0.0.1" or real(a))
    yield public, internal
    public.close()
    internal.close()


def resolver(calls: list | None = None):
    table = {"wf.test": ["127.0.0.1"], "internal.test": ["127.0.0.2"], "other.test": ["127.0.0.1"]}

    def resolve(host: str) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError("unknown host")
        return table[host]

    return resolve


REMOTE = Settings(wes_url_allowlist=("wf.test", "internal.test"))


class TestRemote:
    def test_remote_graph_is_fetched_checked_and_packed(self, run, sites):
        public, _ = sites
        public.serve("/wf/main.cwl", one_step("tools/tool.cwl", outputs=STEP_OUT))
        public.serve("/wf/tools/tool.cwl", TOOL)
        got = load(run, public.url("wf.test", "/wf/main.cwl"), REMOTE, resolve=resolver())
        assert got.workflow == f"{run}/workflow/packed.cwl#main"
        packed = json.loads((run / "workflow" / "packed.cwl").read_text())
        assert {p["class"] for p in packed["$graph"]} == {"Workflow", "CommandLineTool"}
        assert "/wf/tools/tool.cwl" in public.hits
        assert "http" not in json.dumps(packed).replace("https://w3id.org", "")

    def test_redirect_to_a_host_off_the_allow_list_refused(self, run, sites):
        public, _ = sites
        public.serve("/x.cwl", TOOL)
        public.redirect("/wf.cwl", public.url("other.test", "/x.cwl"))
        with pytest.raises(InvalidInput) as exc:
            load(run, public.url("wf.test", "/wf.cwl"), REMOTE, resolve=resolver())
        assert "other.test" in str(exc.value) and "redirect" in str(exc.value)
        assert public.hits == ["/wf.cwl"]  # the redirect target was never requested

    def test_redirect_to_a_private_address_refused_and_followed_without(
        self, run, sites, monkeypatch
    ):
        public, internal = sites
        internal.serve("/secret.cwl", TOOL.replace("cat", "internal_only_tool"))
        public.redirect("/wf.cwl", internal.url("internal.test", "/secret.cwl"))
        url = public.url("wf.test", "/wf.cwl")
        with pytest.raises(InvalidInput) as exc:
            load(run, url, REMOTE, resolve=resolver())
        assert "non-public" in str(exc.value) and "internal.test" in str(exc.value)
        assert internal.hits == []
        # protection off: the hop check passes everything, and the node fetches it
        monkeypatch.setattr(inputs, "_public_ip", lambda a: True)
        load(run, url, REMOTE, resolve=resolver())
        assert internal.hits == ["/secret.cwl"]
        assert "internal_only_tool" in (run / "workflow" / "packed.cwl").read_text()

    def test_redirect_to_an_ip_literal_refused(self, run, sites):
        public, internal = sites
        public.redirect("/wf.cwl", f"http://127.0.0.2:{internal.port}/secret.cwl")
        with pytest.raises(InvalidInput, match="allow-list"):
            load(run, public.url("wf.test", "/wf.cwl"), REMOTE, resolve=resolver())
        assert internal.hits == []

    def test_redirect_loop_is_bounded(self, run, sites):
        public, _ = sites
        public.redirect("/a", public.url("wf.test", "/b"))
        public.redirect("/b", public.url("wf.test", "/a"))
        with pytest.raises(InvalidInput, match="redirects more than"):
            load(run, public.url("wf.test", "/a"), REMOTE, resolve=resolver())
        assert len(public.hits) == remote.MAX_HOPS + 1

    def test_connects_to_the_checked_address(self, sites):
        """The name is resolved once, by the check; the connection goes to that
        address (a second, different DNS answer could not redirect it)."""
        public, internal = sites
        public.serve("/f.txt", "from the checked address")
        internal.serve("/f.txt", "from the rebound address")
        calls: list[str] = []
        answers = iter([["127.0.0.1"], ["127.0.0.2"], ["127.0.0.2"]])

        def rebinding(host):
            calls.append(host)
            return next(answers)

        settings = Settings(wes_url_allowlist=("wf.test",))
        _, body = remote.fetch(
            settings, public.url("wf.test", "/f.txt"), what="t", limit=100, resolve=rebinding
        )
        assert body == b"from the checked address" and calls == ["wf.test"]
        assert internal.hits == []
        assert public.hosts == [f"wf.test:{public.port}"]  # the site is still named

    def test_size_limit(self, sites):
        public, _ = sites
        public.serve("/big", b"x" * 5000)
        from server.errors import PayloadTooLarge

        with pytest.raises(PayloadTooLarge):
            remote.fetch(
                REMOTE, public.url("wf.test", "/big"), what="t", limit=1000, resolve=resolver()
            )


class TestTls:
    def test_https_to_the_pinned_address_verifies_the_host_name(self, tmp_path, monkeypatch):
        """Connecting to the checked address keeps TLS honest: SNI and the
        certificate check use the URL's host name."""
        ca, cert = make_tls(tmp_path, "wf.test")
        site = Site("127.0.0.1", tls=cert)
        try:
            site.serve("/wf.cwl", TOOL)
            real = inputs._public_ip
            monkeypatch.setattr(inputs, "_public_ip", lambda a: a == "127.0.0.1" or real(a))
            monkeypatch.setattr(remote, "CA_BUNDLE", ca)
            settings = Settings(wes_url_allowlist=("wf.test", "evil.test"))
            names = {"wf.test": ["127.0.0.1"], "evil.test": ["127.0.0.1"]}
            _, body = remote.fetch(
                settings,
                site.url("wf.test", "/wf.cwl"),
                what="t",
                limit=10_000,
                resolve=names.__getitem__,
            )
            assert body == TOOL.encode()
            # the same server under a name its certificate does not carry: refused
            with pytest.raises(InvalidInput, match="could not fetch"):
                remote.fetch(
                    settings,
                    site.url("evil.test", "/wf.cwl"),
                    what="t",
                    limit=10_000,
                    resolve=names.__getitem__,
                )
            assert site.hits == ["/wf.cwl"]
        finally:
            site.close()


class TestParamsFetchAndReadable:
    def test_http_inputs_are_fetched_into_the_run_beside_each_other(self, run, sites, monkeypatch):
        from server.wes import service

        public, internal = sites
        public.serve("/d/x.bam", "bam")
        public.serve("/d/x.bam.bai", "bai")
        public.redirect("/d/moved.bam", internal.url("internal.test", "/x.bam"))
        settings = Settings(wes_url_allowlist=("wf.test", "internal.test"))
        fetch = service.remote_fetcher(settings, run)
        monkeypatch.setattr(
            inputs, "_resolve", resolver()
        )  # the service's fetcher resolves as usual
        job = inputs.check_params(
            settings,
            {
                "f": {
                    "class": "File",
                    "location": public.url("wf.test", "/d/x.bam"),
                    "secondaryFiles": [
                        {"class": "File", "location": public.url("wf.test", "/d/x.bam.bai")}
                    ],
                }
            },
            run / "inputs",
            fetch_remote=fetch,
        )
        with pytest.raises(InvalidInput, match="non-public"):
            inputs.check_params(
                settings,
                {"f": {"class": "File", "location": public.url("wf.test", "/d/moved.bam")}},
                run / "inputs",
                fetch_remote=fetch,
            )
        with pytest.raises(InvalidInput, match="not available"):  # no fetcher: refused
            inputs.check_params(
                settings,
                {"f": {"class": "File", "location": public.url("wf.test", "/d/x.bam")}},
                run / "inputs",
            )
        local = Path(job["f"]["location"])
        assert local == run / "fetched" / "wf.test" / "d" / "x.bam" and local.read_text() == "bam"
        assert Path(job["f"]["secondaryFiles"][0]["location"]) == local.parent / "x.bam.bai"
        assert internal.hits == []

    def test_readable_adds_index_files_and_skips_the_run_directory(self, run, tmp_path):
        from server.wes import service

        data = tmp_path / "data"
        data.mkdir()
        for name in ("a.bam", "a.bam.bai", "a.bai", "ab.bam", "ref.fa", "ref.fa.fai", "ref.dict"):
            (data / name).write_text(name)
        (run / "inputs" / "x.txt").write_text("x")
        target = service.write_readable(
            run,
            {str(data / "a.bam"), str(data / "ref.fa"), str(run / "inputs" / "x.txt")},
            {".bai", "^.dict"},
        )
        assert json.loads(target.read_text()) == sorted(
            str(data / n) for n in ("a.bam", "a.bam.bai", "ref.fa", "ref.fa.fai", "ref.dict")
        )


def test_first_submission_while_cwltool_warms_up(tmp_path):
    """A fresh process: the warm-up thread and the first load import cwltool at
    the same time (without the import lock this raced into an ImportError)."""
    import subprocess
    import sys

    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "t.cwl").write_text(TOOL)
    code = (
        "import sys; from pathlib import Path; from server.settings import Settings; "
        "from server.wes import graph; graph.warm_up(); "
        f"g = graph.load(Settings(), {str(tmp_path / 'inputs' / 't.cwl')!r}, "
        f"Path({str(tmp_path)!r}), Path({str(tmp_path / 'inputs')!r})); print(g.workflow)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("t.cwl")
