"""`genomeport beacon ...` commands: help, loads, rejection messages, idempotence."""

from __future__ import annotations

from click.testing import CliRunner

from server.cli import main


def run(args, db_url, tmp_path):
    env = {"GENOMEPORT_DATABASE_URL": db_url, "GENOMEPORT_VAR_DIR": str(tmp_path / "var")}
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def test_beacon_help_lists_loaders(db_url, tmp_path):
    result = run(["beacon", "--help"], db_url, tmp_path)
    assert result.exit_code == 0
    for command in ("load-vcf", "load-metadata", "load-genes", "load-ontology"):
        assert command in result.output


def test_load_vcf_then_again_then_bad_file(db_url, tmp_path, seed_dir):
    assert (
        run(
            ["dataset", "add", "demo", "--access", "public", "--assembly", "GPDEMO1"],
            db_url,
            tmp_path,
        ).exit_code
        == 0
    )
    first = run(
        ["beacon", "load-vcf", str(seed_dir / "cohort.vcf.gz"), "--dataset", "demo", "--quiet"],
        db_url,
        tmp_path,
    )
    assert first.exit_code == 0 and "loaded 603 records" in first.output
    again = run(
        ["beacon", "load-vcf", str(seed_dir / "cohort.vcf.gz"), "--dataset", "demo", "--quiet"],
        db_url,
        tmp_path,
    )
    assert again.exit_code == 0 and "already loaded" in again.output
    bad = tmp_path / "bad.vcf"
    bad.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=50000>\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        "chr1\t10\t.\tA\tG\t.\tPASS\t.\nchr1\t20\t.\tQ\tG\t.\tPASS\t.\n"
    )
    result = run(["beacon", "load-vcf", str(bad), "--dataset", "demo", "--quiet"], db_url, tmp_path)
    assert result.exit_code == 1
    assert f"{bad}: line 5: REF 'Q'" in result.output


def test_load_metadata_into_unknown_dataset_fails(db_url, tmp_path, seed_dir):
    result = run(
        [
            "beacon",
            "load-metadata",
            str(seed_dir / "individuals.bff.json"),
            "--dataset",
            "nope",
            "--quiet",
        ],
        db_url,
        tmp_path,
    )
    assert result.exit_code == 1 and "not registered" in result.output
