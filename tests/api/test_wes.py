"""WES 1.1 through the app: real databases, real signed tokens, a real worker."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path

import pytest

from server.wes.worker import Worker
from tests.support.wes import run_form
from tests.unit.wes.conftest import CAT, FAIL, TWO_STEP

BASE = "/ga4gh/wes/v1"


@pytest.fixture
def settings(settings, kit):
    return kit.trusting(settings).with_overrides(
        wes_poll_ms=50,
        wes_heartbeat_timeout=5,
        wes_max_attachments=4,
        wes_max_attachment_bytes=4096,
    )


@pytest.fixture
def alice(kit):
    return {"Authorization": f"Bearer {kit.passport('alice')}"}


@pytest.fixture
def bob(kit):
    return {"Authorization": f"Bearer {kit.passport('bob')}"}


def form(**kw):
    data = {**run_form("two.cwl", {"msg": "hello"}), **kw}
    return {k: v for k, v in data.items() if v is not None}


def attach(name="two.cwl", text=TWO_STEP):
    return [("workflow_attachment", (name, io.BytesIO(text.encode()), "application/octet-stream"))]


def submit(client, headers, files=None, **kw):
    return client.post(
        f"{BASE}/runs", data=form(**kw), files=attach() if files is None else files, headers=headers
    )


def submit_tool(client, headers, name, text, params="{}"):
    """Submit the one attached document ``name`` as the workflow."""
    return submit(
        client, headers, files=attach(name, text), workflow_url=name, workflow_params=params
    )


def assert_error(resp, status):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status_code"] == status and isinstance(body["msg"], str)


def run_count(client, headers) -> int:
    return len(client.get(f"{BASE}/runs", headers=headers).json()["runs"])


def workdirs(settings) -> list[str]:
    root = settings.effective_wes_work_dir
    return sorted(os.listdir(root)) if root.exists() else []


class TestGetServiceInfo:
    def test_service_info_returns_200(self, client):
        resp = client.get(f"{BASE}/service-info")
        assert resp.status_code == 200
        info = resp.json()
        assert info["type"] == {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"}
        assert info["workflow_type_versions"]["CWL"]["workflow_type_version"] == [
            "v1.0",
            "v1.1",
            "v1.2",
        ]
        assert "cwltool" in info["workflow_engine_versions"]
        assert set(info["system_state_counts"]) >= {"QUEUED", "RUNNING", "COMPLETE"}
        assert info["auth_instructions_url"].startswith("http")
        assert all(":" not in p["name"] for p in info["default_workflow_engine_parameters"])

    def test_service_info_lists_the_sandbox_and_its_limits(self, client, settings):
        info = client.get(f"{BASE}/service-info").json()
        assert info["sandbox"]["kind"] == "bwrap" and info["sandbox"]["user"] == "genomeport-run"
        assert info["sandbox"]["network"] == "none"
        assert info["sandbox"]["limits"]["wall_seconds"] == settings.wes_run_wall_seconds
        assert info["sandbox"]["limits"]["memory_mb_per_process"] == settings.wes_run_memory_mb
        assert info["tags"]["sandbox"] == "bwrap"
        assert info["tags"]["limit_wall_seconds"] == str(settings.wes_run_wall_seconds)


class TestRunWorkflow:
    def test_valid_request_returns_200_and_queues(self, client, alice):
        resp = submit(client, alice, tags=json.dumps({"project": "p1"}))
        assert resp.status_code == 200, resp.text
        run_id = resp.json()["run_id"]
        status = client.get(f"{BASE}/runs/{run_id}/status", headers=alice).json()
        assert status == {"run_id": run_id, "state": "QUEUED"}
        log = client.get(f"{BASE}/runs/{run_id}", headers=alice).json()
        assert log["request"]["tags"] == {"project": "p1"}
        assert log["request"]["workflow_params"] == {"msg": "hello"}

    def test_anonymous_with_issuer_configured_returns_401(self, client):
        assert_error(submit(client, {}), 401)

    def test_rejected_token_returns_401(self, client, kit):
        token, _ = kit.failure_cases("x")["alg none"]
        assert_error(submit(client, {"Authorization": f"Bearer {token}"}), 401)

    MALFORMED = [
        {"workflow_type": None},
        {"workflow_type_version": None},
        {"workflow_type": "WDL"},
        {"workflow_type_version": "v9.9"},
        {"workflow_params": "[1, 2]"},
        {"workflow_params": "not json"},
        {"tags": '"x"'},
        {"tags": "[]"},
        {"workflow_engine": "nextflow"},
        {"workflow_engine_parameters": '{"--tmpdir-prefix": "/"}'},
        {"workflow_engine_parameters": '{"parallel": "; rm -rf /"}'},
        {"workflow_engine_parameters": "[]"},
        {"workflow_url": None},
    ]

    def test_malformed_request_returns_400_and_creates_no_run(self, client, alice, settings):
        for fields in self.MALFORMED:
            assert_error(submit(client, alice, **fields), 400)
        assert run_count(client, alice) == 0 and workdirs(settings) == []

    def test_unsafe_attachment_name_returns_400(self, client, alice, settings):
        for name in [
            "../evil.cwl",
            "a/../../evil.cwl",
            "/etc/evil.cwl",
            "a\\evil.cwl",
            "C:evil.cwl",
            "a//b.cwl",
            "./x.cwl",
            "a\x00b.cwl",
        ]:
            resp = submit(client, alice, files=attach(name), workflow_url="two.cwl")
            assert_error(resp, 400)
        assert run_count(client, alice) == 0 and workdirs(settings) == []
        assert not (settings.effective_wes_work_dir.parent / "evil.cwl").exists()

    def test_too_many_attachments_returns_413(self, client, alice, settings):
        files = attach() + [
            ("workflow_attachment", (f"f{i}", io.BytesIO(b"x"), "text/plain")) for i in range(4)
        ]
        assert_error(submit(client, alice, files=files), 413)
        assert run_count(client, alice) == 0 and workdirs(settings) == []

    def test_too_large_attachment_returns_413(self, client, alice):
        files = attach() + [("workflow_attachment", ("big", io.BytesIO(b"x" * 5000), "text/plain"))]
        assert_error(submit(client, alice, files=files), 413)
        assert run_count(client, alice) == 0

    REFUSED_URLS = [
        "file:///etc/passwd",
        "/etc/passwd",
        "http://127.0.0.1:8080/x.cwl",
        "http://localhost/x.cwl",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/x.cwl",
        "http://[::1]/x.cwl",
        "https://example.org/x.cwl",
        "ftp://example.org/x.cwl",
        "../two.cwl",
        "other.cwl",
        "http://user:pw@example.org/x.cwl",
        "a\\two.cwl",
    ]

    def test_refused_workflow_url_returns_400(self, client, alice, settings):
        for url in self.REFUSED_URLS:
            assert_error(submit(client, alice, workflow_url=url), 400)
        assert run_count(client, alice) == 0 and workdirs(settings) == []

    def test_relative_url_with_fragment_returns_200(self, client, alice, db):
        with_main = TWO_STEP.replace("class: Workflow\n", "class: Workflow\nid: main\n")
        resp = submit(
            client, alice, workflow_url="sub/two.cwl#main", files=attach("sub/two.cwl", with_main)
        )
        assert resp.status_code == 200, resp.text

    def test_fragment_naming_nothing_in_the_document_returns_400(self, client, alice, settings):
        resp = submit(client, alice, workflow_url="two.cwl#nope")
        assert_error(resp, 400)
        assert "#nope" in resp.json()["msg"]
        assert run_count(client, alice) == 0 and workdirs(settings) == []

    def test_fields_sent_as_file_parts_returns_200(self, client, alice):
        files = attach() + [
            (k, (k, io.BytesIO(v.encode()), "application/octet-stream")) for k, v in form().items()
        ]
        resp = client.post(f"{BASE}/runs", files=files, headers=alice)
        assert resp.status_code == 200, resp.text


ROUTES = [
    ("get", ""),
    ("get", "/status"),
    ("post", "/cancel"),
    ("get", "/tasks"),
    ("get", "/tasks/1"),
]


class TestUnknownRun:
    def test_unknown_run_returns_404_on_every_route(self, client, alice):
        submit(client, alice)
        before = client.get(f"{BASE}/service-info").json()["system_state_counts"]
        for method, path in ROUTES:
            resp = getattr(client, method)(f"{BASE}/runs/no-such-run{path}", headers=alice)
            assert_error(resp, 404)
        assert client.get(f"{BASE}/service-info").json()["system_state_counts"] == before


class TestIsolation:
    def test_other_callers_run_returns_404_on_every_route(self, client, alice, bob):
        run_id = submit(client, alice).json()["run_id"]
        for method, path in ROUTES:
            assert_error(getattr(client, method)(f"{BASE}/runs/{run_id}{path}", headers=bob), 404)
        assert client.get(f"{BASE}/runs/{run_id}/status", headers=alice).json()["state"] == "QUEUED"

    def test_list_shows_only_own_runs(self, client, alice, bob):
        mine = {submit(client, alice).json()["run_id"] for _ in range(2)}
        theirs = submit(client, bob).json()["run_id"]
        listed = {r["run_id"] for r in client.get(f"{BASE}/runs", headers=alice).json()["runs"]}
        assert listed == mine and theirs not in listed


class TestListRuns:
    def test_pages_walk_every_run_exactly_once(self, client, alice):
        ids = {submit(client, alice).json()["run_id"] for _ in range(7)}
        seen, token, pages = [], None, 0
        while True:
            params = {"page_size": 3, **({"page_token": token} if token else {})}
            body = client.get(f"{BASE}/runs", params=params, headers=alice).json()
            seen += [r["run_id"] for r in body["runs"]]
            pages += 1
            # a run submitted mid-walk is not listed twice nor shifts the pages
            if pages == 1:
                submit(client, alice)
            token = body.get("next_page_token")
            if not token:
                break
        assert pages == 3 and len(seen) == len(set(seen)) == 7 and set(seen) == ids
        assert all(
            set(r) >= {"run_id", "state", "start_time", "end_time", "tags"} for r in body["runs"]
        )

    def test_tampered_token_returns_400(self, client, alice):
        for _ in range(3):
            submit(client, alice)
        token = client.get(f"{BASE}/runs", params={"page_size": 1}, headers=alice).json()[
            "next_page_token"
        ]
        body, sig = token.split(".")
        forged = ("eyJvIjoiYWxpY2UiLCJrIjo5OTk5fQ" if body[0] != "x" else "x") + "." + sig
        assert_error(client.get(f"{BASE}/runs", params={"page_token": forged}, headers=alice), 400)
        assert_error(
            client.get(f"{BASE}/runs", params={"page_token": "garbage"}, headers=alice), 400
        )

    def test_other_callers_token_returns_400(self, client, alice, bob):
        for _ in range(2):
            submit(client, alice)
        token = client.get(f"{BASE}/runs", params={"page_size": 1}, headers=alice).json()[
            "next_page_token"
        ]
        assert_error(client.get(f"{BASE}/runs", params={"page_token": token}, headers=bob), 400)

    def test_bad_page_size_returns_400(self, client, alice):
        for size in (0, 1001, "x"):
            assert_error(client.get(f"{BASE}/runs", params={"page_size": size}, headers=alice), 400)


class TestCancelRun:
    def test_cancel_queued_run_returns_200_and_canceled(self, client, alice):
        run_id = submit(client, alice).json()["run_id"]
        assert client.post(f"{BASE}/runs/{run_id}/cancel", headers=alice).json() == {
            "run_id": run_id
        }
        log = client.get(f"{BASE}/runs/{run_id}", headers=alice).json()
        assert log["state"] == "CANCELED" and log["run_log"]["end_time"]


class TestGetRunLog:
    def test_completed_run_has_tasks_logs_and_outputs(self, client, alice, settings, db):
        run_id = submit(client, alice, tags='{"k": "v"}').json()["run_id"]
        Worker(settings, db).run_forever(max_runs=1)
        log = client.get(f"{BASE}/runs/{run_id}", headers=alice).json()
        assert log["state"] == "COMPLETE" and log["run_log"]["exit_code"] == 0
        assert log["request"]["tags"] == {"k": "v"}
        assert [t["name"] for t in log["task_logs"]] == ["say", "count"]
        out = log["outputs"]["out"]
        assert out["basename"] == "count.txt"
        data = client.get(out["location"].removeprefix(settings.public_url))
        assert data.status_code == 200 and data.text.split()[0] == "6"
        stderr = client.get(log["run_log"]["stderr"].removeprefix(settings.public_url))
        assert stderr.status_code == 200 and "completed success" in stderr.text
        tasks = client.get(
            f"{BASE}/runs/{run_id}/tasks", params={"page_size": 1}, headers=alice
        ).json()
        assert [t["id"] for t in tasks["task_logs"]] == ["1"] and tasks["next_page_token"]
        rest = client.get(
            f"{BASE}/runs/{run_id}/tasks",
            headers=alice,
            params={"page_token": tasks["next_page_token"]},
        ).json()
        assert [t["id"] for t in rest["task_logs"]] == ["2"] and not rest["next_page_token"]
        task = client.get(f"{BASE}/runs/{run_id}/tasks/2", headers=alice).json()
        assert task["exit_code"] == 0 and task["cmd"][:2] == ["wc", "-c"]
        # the task's streams are the tool's own (wc's stdout is count.txt), not cwltool's log
        tout = client.get(task["stdout"].removeprefix(settings.public_url))
        assert tout.status_code == 200 and tout.text.split()[0] == "6"
        terr = client.get(task["stderr"].removeprefix(settings.public_url))
        assert terr.status_code == 200 and "[job" not in terr.text
        assert task["start_time"] <= task["end_time"]
        counts = client.get(f"{BASE}/service-info").json()["system_state_counts"]
        assert counts["COMPLETE"] == 1

    def test_failed_run_is_executor_error(self, client, alice, settings, db):
        run_id = submit_tool(client, alice, "fail.cwl", FAIL).json()["run_id"]
        Worker(settings, db).run_forever(max_runs=1)
        log = client.get(f"{BASE}/runs/{run_id}", headers=alice).json()
        assert log["state"] == "EXECUTOR_ERROR" and log["task_logs"][0]["exit_code"] == 3

    def test_signed_url_with_bad_signature_returns_403_or_401(self, client, alice, settings, db):
        run_id = submit(client, alice).json()["run_id"]
        Worker(settings, db).run_forever(max_runs=1)
        url = client.get(f"{BASE}/runs/{run_id}", headers=alice).json()["run_log"]["stdout"]
        bad = url.removeprefix(settings.public_url)[:-3] + "AAA"
        assert client.get(bad).status_code in (401, 403)


class TestAnonymousDevelopmentNode:
    def test_without_issuer_anonymous_may_submit(self, settings, db):
        from server.web.app import create_app

        cx = create_app(settings.with_overrides(auth_issuers=()))
        with cx.test_client() as c:
            resp = submit(c, {})
            assert resp.status_code == 200
            assert len(c.get(f"{BASE}/runs").json()["runs"]) == 1


class TestDrsInputs:
    def test_drs_input_of_a_readable_object_returns_200(self, client, kit, settings, db):
        from server import registry

        seed = Path(__file__).resolve().parents[2] / "seed_data"
        registry.add_dataset(db, "wes-ctl", access="controlled", name="c", assembly="GPDEMO1")
        registry.add_files(db, [seed / "DK0001.bam"], "wes-ctl", object_id="DK0001", progress=False)
        params = json.dumps(
            {"msg": "x", "bam": {"class": "File", "location": "drs://127.0.0.1/DK0001.bam"}}
        )
        granted = {"Authorization": f"Bearer {kit.grant('wes-ctl', sub='carol')}"}
        resp = submit(client, granted, workflow_params=params)
        assert resp.status_code == 200, resp.text
        job = json.loads(
            (settings.effective_wes_work_dir / resp.json()["run_id"] / "job.json").read_text()
        )
        assert job["bam"]["location"] == str(seed / "DK0001.bam")

    def test_drs_input_without_grant_creates_no_run(self, client, alice, settings, db):
        from server import registry

        seed = Path(__file__).resolve().parents[2] / "seed_data"
        registry.add_dataset(db, "wes-ctl", access="controlled", name="c", assembly="GPDEMO1")
        registry.add_files(db, [seed / "DK0001.bam"], "wes-ctl", object_id="DK0001", progress=False)
        for loc, status in (
            ("drs://127.0.0.1/DK0001.bam", 403),
            ("drs://127.0.0.1/nope.bam", 404),
            ("drs://elsewhere.org/DK0001.bam", 400),
        ):
            params = json.dumps({"bam": {"class": "File", "location": loc}})
            assert_error(submit(client, alice, workflow_params=params), status)
        assert run_count(client, alice) == 0 and workdirs(settings) == []


# ------------------------------------------------------------ WES conformance
class TestServiceInfoConformance:
    def test_engine_versions_in_the_wes_1_1_shape(self, client):
        from importlib.metadata import version

        info = client.get(f"{BASE}/service-info").json()
        assert info["workflow_engine_versions"]["cwltool"] == {
            "workflow_engine_version": [version("cwltool")]
        }
        assert all(
            set(v) == {"workflow_engine_version"} and isinstance(v["workflow_engine_version"], list)
            for v in info["workflow_engine_versions"].values()
        )

    def test_listed_parameter_names_and_defaults_are_accepted_by_submit(self, client, alice):
        params = client.get(f"{BASE}/service-info").json()["default_workflow_engine_parameters"]
        cwltool = [p for p in params if p["workflow_engine"] == "cwltool"]
        assert {p["name"] for p in cwltool} >= {"parallel", "on-error", "eval-timeout"}
        by_name = {p["name"]: p for p in cwltool}
        assert by_name["parallel"] == {
            "name": "parallel",
            "type": "boolean",
            "default_value": "false",
            "workflow_engine": "cwltool",
        }
        assert by_name["eval-timeout"]["default_value"] == "60"
        assert by_name["eval-timeout"]["type"] == "integer"
        assert by_name["on-error"] == {
            "name": "on-error",
            "type": "string",
            "default_value": "stop",
            "workflow_engine": "cwltool",
        }
        for p in params:  # booleans and numbers written as JSON, never Python's True/None
            if p["type"] in ("boolean", "integer") and p["default_value"]:
                assert isinstance(
                    json.loads(p["default_value"]), bool if p["type"] == "boolean" else int
                )
            assert p["default_value"] not in ("True", "False", "None")
        sent = {
            p["name"]: (
                p["default_value"] if p["type"] == "string" else json.loads(p["default_value"])
            )
            for p in cwltool
            if p["default_value"]
        }
        resp = submit(
            client, alice, workflow_engine="cwltool", workflow_engine_parameters=json.dumps(sent)
        )
        assert resp.status_code == 200, resp.text
        log = client.get(f"{BASE}/runs/{resp.json()['run_id']}", headers=alice).json()
        assert log["request"]["workflow_engine_parameters"]["parallel"] == "false"

    def test_unsupported_engine_version_returns_400(self, client, alice, settings):
        from importlib.metadata import version

        for bad in ("0.0.1", "nonsense", "1.0.20180302231433"):
            assert_error(submit(client, alice, workflow_engine_version=bad), 400)
        assert run_count(client, alice) == 0 and workdirs(settings) == []
        ok = submit(client, alice, workflow_engine_version=version("cwltool"))
        assert ok.status_code == 200, ok.text


class TestListFilters:
    def test_filter_by_state(self, client, alice, settings, db):
        done = submit(client, alice).json()["run_id"]
        Worker(settings, db).run_forever(max_runs=1)
        queued = {submit(client, alice).json()["run_id"] for _ in range(3)}
        canceled = submit(client, alice).json()["run_id"]
        client.post(f"{BASE}/runs/{canceled}/cancel", headers=alice)

        def ids(**params):
            body = client.get(f"{BASE}/runs", params=params, headers=alice)
            assert body.status_code == 200, body.text
            return {r["run_id"] for r in body.json()["runs"]}

        assert ids(state="COMPLETE") == {done}
        assert ids(state="QUEUED") == queued
        assert ids(state=["COMPLETE", "CANCELED"]) == {done, canceled}
        assert_error(client.get(f"{BASE}/runs", params={"state": "DONE"}, headers=alice), 400)

    def test_filter_by_tags_with_pages(self, client, alice, bob):
        tagged = [
            submit(client, alice, tags=json.dumps({"project": "p1", "n": str(i)})).json()["run_id"]
            for i in range(5)
        ]
        for _ in range(4):  # interleaved runs that do not match
            submit(client, alice, tags=json.dumps({"project": "p2"}))
        submit(client, bob, tags=json.dumps({"project": "p1"}))
        seen, token = [], None
        while True:
            params = {
                "page_size": 2,
                "tags": "project:p1",
                **({"page_token": token} if token else {}),
            }
            body = client.get(f"{BASE}/runs", params=params, headers=alice).json()
            assert all(r["tags"]["project"] == "p1" for r in body["runs"])
            seen += [r["run_id"] for r in body["runs"]]
            token = body["next_page_token"]
            if not token:
                break
        assert seen == list(reversed(tagged))  # newest first, each once, only alice's
        both = client.get(
            f"{BASE}/runs", params=[("tags", "project:p1"), ("tags", "n:3")], headers=alice
        ).json()["runs"]
        assert [r["run_id"] for r in both] == [tagged[3]]
        any_value = client.get(f"{BASE}/runs", params={"tags": "n"}, headers=alice).json()["runs"]
        assert len(any_value) == 5

    def test_page_token_is_bound_to_its_filters(self, client, alice):
        for _ in range(3):
            submit(client, alice, tags=json.dumps({"project": "p1"}))
        token = client.get(
            f"{BASE}/runs", params={"page_size": 1, "tags": "project:p1"}, headers=alice
        ).json()["next_page_token"]
        assert token
        assert_error(client.get(f"{BASE}/runs", params={"page_token": token}, headers=alice), 400)
        assert_error(
            client.get(
                f"{BASE}/runs", params={"page_token": token, "tags": "project:p2"}, headers=alice
            ),
            400,
        )
        ok = client.get(
            f"{BASE}/runs", params={"page_token": token, "tags": "project:p1"}, headers=alice
        )
        assert ok.status_code == 200 and len(ok.json()["runs"]) == 2


class TestOwnOutputsAsInputs:
    def test_own_wes_output_is_an_input_of_the_next_run(self, client, alice, bob, settings, db):
        first = submit(client, alice).json()["run_id"]
        Worker(settings, db).run_forever(max_runs=1)
        out = client.get(f"{BASE}/runs/{first}", headers=alice).json()["outputs"]["out"]
        assert out["drs_uri"].startswith("drs://127.0.0.1/wes~")
        params = json.dumps({"f": {"class": "File", "location": out["drs_uri"]}})
        # another caller may not use it: 404 as for DRS itself, and no run
        assert_error(
            submit_tool(client, bob, "cat.cwl", CAT, params),
            404,
        )
        assert run_count(client, bob) == 0
        resp = submit_tool(client, alice, "cat.cwl", CAT, params)
        assert resp.status_code == 200, resp.text
        second = resp.json()["run_id"]
        workdir = settings.effective_wes_work_dir / second
        first_out = str(settings.effective_wes_work_dir / first / "outputs" / "count.txt")
        assert json.loads((workdir / "job.json").read_text())["f"]["location"] == first_out
        assert json.loads((workdir / "readable.json").read_text()) == [first_out]
        Worker(settings, db).run_forever(max_runs=1)
        log = client.get(f"{BASE}/runs/{second}", headers=alice).json()
        assert log["state"] == "COMPLETE", log["run_log"]["system_logs"]
        copied = client.get(log["outputs"]["out"]["location"].removeprefix(settings.public_url))
        assert copied.text.split()[0] == "6"


class TestReadable:
    def test_readable_lists_input_roots_paths_and_their_index(
        self, client, alice, settings, tmp_path
    ):
        from server.wes import inputs as wes_inputs

        seed = Path(__file__).resolve().parents[2] / "seed_data"
        app_settings = settings.with_overrides(wes_input_roots=(str(seed),))
        from server.web.app import create_app

        with create_app(app_settings, migrate=False).test_client() as c:
            params = json.dumps({"alignments": {"class": "File", "path": str(seed / "DK0001.bam")}})
            resp = submit(
                c,
                alice,
                files=attach("notes.txt", "x"),
                workflow_url="alignment-qc",
                workflow_params=params,
            )
            assert resp.status_code == 200, resp.text
        readable = json.loads(
            (settings.effective_wes_work_dir / resp.json()["run_id"] / "readable.json").read_text()
        )
        shipped = str(wes_inputs.shipped_workflows()["alignment-qc"].parent)
        assert readable == sorted([str(seed / "DK0001.bam"), str(seed / "DK0001.bam.bai"), shipped])
        assert not any(p.startswith(str(settings.effective_wes_work_dir)) for p in readable)
        assert not any("signing.key" in p or p.startswith(str(settings.var_dir)) for p in readable)


def node_key(settings) -> Path:
    """``<var_dir>/signing.key`` as a node that generated its key has it."""
    key = Path(settings.var_dir).resolve() / "signing.key"
    if not key.exists():
        key.write_text(os.urandom(32).hex())
    return key


class TestDocumentInputs:
    """The rules of workflow_params apply inside the attached documents too."""

    def test_default_file_at_a_server_path_returns_400(self, client, alice, settings):
        key = node_key(settings)
        text = CAT.replace(
            "inputs:\n  f: {type: File, inputBinding: {position: 1}}",
            f"inputs:\n  f:\n    type: File\n    inputBinding: {{position: 1}}\n"
            f"    default: {{class: File, location: {key}}}",
        )
        resp = submit_tool(client, alice, "cat.cwl", text)
        assert_error(resp, 400)
        assert str(key) in resp.json()["msg"] and "cat.cwl" in resp.json()["msg"]
        assert run_count(client, alice) == 0 and workdirs(settings) == []

    def test_without_the_graph_check_the_same_default_leaks_the_key(
        self, client, alice, settings, db, monkeypatch
    ):
        """The protection switched off: the same document runs and its output is
        the node's signing key (what the check above prevents). The sandbox, a
        second layer that would not mount the key, is off too, so that this shows
        what the graph check alone stops."""
        from server.wes import graph

        key = node_key(settings)
        text = CAT.replace(
            "inputs:\n  f: {type: File, inputBinding: {position: 1}}",
            f"inputs:\n  f:\n    type: File\n    inputBinding: {{position: 1}}\n"
            f"    default: {{class: File, location: {key}}}",
        )
        monkeypatch.setattr(graph, "check_literals", lambda *a, **k: None)
        resp = submit_tool(client, alice, "cat.cwl", text)
        assert resp.status_code == 200, resp.text
        Worker(dataclasses.replace(settings, wes_sandbox="none"), db).run_forever(max_runs=1)
        log = client.get(f"{BASE}/runs/{resp.json()['run_id']}", headers=alice).json()
        assert log["state"] == "COMPLETE", log["run_log"]["system_logs"]
        leaked = client.get(log["outputs"]["out"]["location"].removeprefix(settings.public_url))
        assert leaked.content == key.read_bytes()
