"""The node's own endpoints and the error model shared by every API."""

import json

import pytest

PROBLEM = "application/problem+json"


class TestGetServiceInfo:
    def test_node_service_info_returns_200(self, client):
        r = client.get("/service-info")
        assert r.status_code == 200
        body = r.json()
        assert body["type"] == {
            "group": "org.ga4gh",
            "artifact": "service-registry",
            "version": "1.0.0",
        }
        for key in ("id", "name", "organization", "version"):
            assert key in body


class TestGetServices:
    def test_registry_lists_served_apis_returns_200(self, client):
        from server.web.apis import APIS

        r = client.get("/services")
        assert r.status_code == 200
        artifacts = {s["type"]["artifact"] for s in r.json()}
        docs = {api.document for api in APIS}
        assert ("htsget" in artifacts) == ("htsget.yaml" in docs)
        assert ("drs" in artifacts) == ("drs.yaml" in docs)
        for service in r.json():
            assert service["url"].startswith("http")
            assert client.get(f"/services/{service['id']}").json() == service

    def test_service_types_are_distinct_returns_200(self, client):
        types = client.get("/services/types").json()
        assert len(types) == len({(t["group"], t["artifact"], t["version"]) for t in types})

    def test_unknown_service_returns_404(self, client):
        r = client.get("/services/nope")
        assert r.status_code == 404
        assert r.json() == {"msg": "no service with id 'nope'", "status_code": 404}


class TestErrorsEverywhere:
    """Unknown routes, bad methods and oversized bodies answer in each API's shape."""

    @pytest.mark.parametrize(
        "path,shape",
        [
            ("/reads/%2E%2E/%2E%2E/etc/passwd", "htsget"),
            ("/reads/../../etc/passwd", "msg"),  # clients normalise this to /etc/passwd
            ("/variants/a/b/c", "htsget"),
            ("/ga4gh/drs/v1/nowhere", "msg"),
            ("/ga4gh/wes/v1/nowhere", "msg"),
            ("/nowhere", "msg"),
        ],
    )
    def test_unknown_route_returns_404(self, client, path, shape):
        r = client.get(path)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        if shape == "htsget":
            assert body["htsget"]["error"] == "NotFound"
        else:
            assert body["status_code"] == 404 and body["msg"]

    def test_wrong_method_returns_405(self, client):
        r = client.delete("/service-info")
        assert r.status_code == 405
        assert r.headers["content-type"] != PROBLEM
        assert r.json()["status_code"] == 405

    @pytest.mark.parametrize(
        "path", ["/service-info", "/reads/x", "/ga4gh/drs/v1/objects", "/beacon/v2/individuals"]
    )
    def test_oversized_body_returns_413(self, client, settings, path):
        r = client.post(
            path,
            content=b"{" + b" " * (settings.max_body_bytes + 1) + b"}",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413
        body = r.json()
        assert "413" in json.dumps(body) or "PayloadTooLarge" in json.dumps(body)

    def test_no_stack_trace_or_problem_json_on_errors(self, client):
        r = client.get("/services/%00")
        assert r.headers["content-type"] != PROBLEM
        assert "Traceback" not in r.text


class TestOperations:
    def test_liveness_returns_200(self, client):
        assert client.get("/health/live").json() == {"status": "ok"}

    def test_readiness_checks_database_returns_200(self, client):
        assert client.get("/health/ready").json()["database"] == "ok"

    def test_metrics_count_requests_returns_200(self, client):
        client.get("/service-info")
        text = client.get("/metrics").text
        assert "genomeport_requests_total" in text

    def test_request_id_is_echoed(self, client):
        r = client.get("/service-info", headers={"X-Request-ID": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123"
        r = client.get("/service-info", headers={"X-Request-ID": "bad id with spaces"})
        assert r.headers["x-request-id"] != "bad id with spaces"

    def test_cors_preflight(self, client):
        r = client.options(
            "/service-info",
            headers={"Origin": "https://igv.org", "Access-Control-Request-Method": "GET"},
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] in ("*", "https://igv.org")
