import io

import pytest

from server.errors import InvalidInput, PayloadTooLarge
from server.settings import Settings
from server.wes import inputs

BAD_NAMES = [
    "../x.cwl",
    "a/../../x",
    "/etc/passwd",
    "a\\b.cwl",
    "a\x00b",
    "",
    "a//b",
    "./a",
    "C:evil",
    "a/./b",
    "a/..",
    "x\n.cwl",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_attachment_name_is_refused(name):
    with pytest.raises(InvalidInput):
        inputs.check_attachment_name(name)


def test_subdirectories_are_kept(tmp_path):
    s = Settings(var_dir=str(tmp_path))
    names = inputs.save_attachments(
        s, tmp_path, [("wf.cwl", io.BytesIO(b"a")), ("tools/sub/t.cwl", io.BytesIO(b"b"))]
    )
    assert names == ["wf.cwl", "tools/sub/t.cwl"]
    assert (tmp_path / "tools/sub/t.cwl").read_bytes() == b"b"


def test_too_many_attachments(tmp_path):
    s = Settings(var_dir=str(tmp_path), wes_max_attachments=2)
    with pytest.raises(PayloadTooLarge):
        inputs.save_attachments(s, tmp_path, [(f"f{i}", io.BytesIO(b"")) for i in range(3)])


def test_attachment_too_large(tmp_path):
    s = Settings(var_dir=str(tmp_path), wes_max_attachment_bytes=10)
    with pytest.raises(PayloadTooLarge):
        inputs.save_attachments(s, tmp_path, [("big", io.BytesIO(b"x" * 11))])


def test_duplicate_attachment_must_be_the_same_file(tmp_path):
    (tmp_path / "ok").mkdir()
    names = inputs.save_attachments(
        Settings(), tmp_path / "ok", [("a", io.BytesIO(b"x")), ("a", io.BytesIO(b"x"))]
    )
    assert names == ["a"]
    (tmp_path / "bad").mkdir()
    with pytest.raises(InvalidInput):
        inputs.save_attachments(
            Settings(), tmp_path / "bad", [("a", io.BytesIO(b"x")), ("a", io.BytesIO(b"y"))]
        )


def test_attachment_through_symlinked_dir_refused(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "in" / "link").symlink_to(tmp_path / "out")
    with pytest.raises(InvalidInput):
        inputs.save_attachments(Settings(), tmp_path / "in", [("link/x", io.BytesIO(b""))])
    assert not (tmp_path / "out" / "x").exists()


class TestWorkflowUrl:
    def settings(self, **kw):
        return Settings(wes_url_allowlist=("example.org", "localhost", "10.0.0.1"), **kw)

    def test_attachment_with_fragment(self, tmp_path):
        got = inputs.resolve_workflow(self.settings(), "packed.cwl#main", tmp_path, ["packed.cwl"])
        assert got == f"{tmp_path.resolve()}/packed.cwl#main"

    def test_attachment_in_subdirectory(self, tmp_path):
        got = inputs.resolve_workflow(self.settings(), "wf/main.cwl", tmp_path, ["wf/main.cwl"])
        assert got == f"{tmp_path.resolve()}/wf/main.cwl"

    @pytest.mark.parametrize(
        "url",
        [
            "file:///etc/passwd",
            "/etc/passwd",
            "/work/main/workflows/x.cwl",
            "ftp://example.org/x",
            "http://localhost/x.cwl",
            "http://127.0.0.1/x.cwl",
            "http://[::1]/x.cwl",
            "http://169.254.169.254/latest",
            "http://10.0.0.1/x.cwl",
            "http://user:pw@example.org/x",
            "https://not-listed.org/x.cwl",
            "../x.cwl",
            "a\\b.cwl",
            "missing.cwl",
            "",
            "workflows/../server/x.cwl",
            "gopher://example.org/",
        ],
    )
    def test_refused(self, tmp_path, url):
        with pytest.raises(InvalidInput):
            inputs.resolve_workflow(self.settings(), url, tmp_path, [])

    def test_allowlisted_host_with_private_address_refused(self, tmp_path):
        with pytest.raises(InvalidInput):
            inputs.check_remote_url(
                self.settings(),
                "https://example.org/x.cwl",
                resolve=lambda h: ["93.184.216.34", "192.168.1.5"],
            )

    def test_allowlisted_public_host_allowed(self):
        url = "https://example.org/x.cwl#main"
        assert (
            inputs.check_remote_url(self.settings(), url, resolve=lambda h: ["93.184.216.34"])
            == url
        )


class TestParams:
    def test_relative_location_lands_in_inputs(self, tmp_path):
        job = inputs.check_params(
            Settings(), {"f": {"class": "File", "location": "d/a.bam"}}, tmp_path
        )
        assert job["f"]["location"] == str(tmp_path.resolve() / "d/a.bam")

    @pytest.mark.parametrize(
        "loc", ["/etc/passwd", "file:///etc/passwd", "../x", "s3://b/k", "http://127.0.0.1/x"]
    )
    def test_refused_locations(self, tmp_path, loc):
        with pytest.raises(InvalidInput):
            inputs.check_params(Settings(), {"f": {"class": "File", "location": loc}}, tmp_path)

    def test_input_roots(self, tmp_path):
        s = Settings(wes_input_roots=(str(tmp_path / "data"),))
        ok = {"class": "File", "path": str(tmp_path / "data" / "a.vcf")}
        assert inputs.check_params(s, {"f": ok}, tmp_path)["f"]["path"].endswith("a.vcf")
        with pytest.raises(InvalidInput):
            inputs.check_params(
                s, {"f": {"class": "File", "path": str(tmp_path / "data/../x")}}, tmp_path
            )

    def test_nested_secondary_files_checked(self, tmp_path):
        bad = {
            "class": "File",
            "location": "a.bam",
            "secondaryFiles": [{"class": "File", "location": "/etc/shadow"}],
        }
        with pytest.raises(InvalidInput):
            inputs.check_params(Settings(), {"f": bad}, tmp_path)

    def test_import_directives_refused(self, tmp_path):
        with pytest.raises(InvalidInput):
            inputs.check_params(Settings(), {"x": {"$import": "/etc/passwd"}}, tmp_path)


def test_client_path_of_an_attachment_maps_into_inputs(tmp_path):
    job = inputs.check_params(
        Settings(),
        {"f": {"class": "File", "location": "file:///home/me/wf/data/x%20y.txt"}},
        tmp_path,
        attachments=["wf.cwl", "data/x y.txt"],
    )
    assert job["f"]["location"] == str(tmp_path.resolve() / "data" / "x y.txt")
    with pytest.raises(InvalidInput):  # a path that names no attachment stays refused
        inputs.check_params(
            Settings(),
            {"f": {"class": "File", "location": "file:///etc/passwd"}},
            tmp_path,
            attachments=["wf.cwl"],
        )


def test_file_and_directory_of_the_same_name_clash(tmp_path):
    with pytest.raises(InvalidInput):
        inputs.save_attachments(
            Settings(), tmp_path, [("a", io.BytesIO(b"")), ("a/b", io.BytesIO(b""))]
        )
