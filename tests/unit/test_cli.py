import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from server.cli import main


def all_commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, prefix + (name,))


@pytest.mark.parametrize("path", [p for p, _ in all_commands(main)], ids=lambda p: " ".join(p))
def test_every_command_explains_itself(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    cmd = main
    for name in path:
        cmd = cmd.commands[name]
    assert cmd.help and len(cmd.help.strip()) > 20, f"{' '.join(path)} has no real help text"
    for param in cmd.params:
        if isinstance(param, click.Option) and param.name not in ("help",):
            assert param.help, f"{' '.join(path)} {param.opts[0]} has no help"


def test_top_level_help_runs_as_a_program():
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "htsget" in out.stdout and "dataset" in out.stdout


def test_cli_registers_dataset_and_files(settings, testdata):
    from server.cli import Ctx

    runner = CliRunner()
    obj = Ctx(settings)
    r = runner.invoke(
        main, ["dataset", "add", "ds1", "--access", "registered", "--assembly", "GRCh37"], obj=obj
    )
    assert r.exit_code == 0 and "created: dataset ds1" in r.output
    bam = testdata / "reads" / "htsnexus_test_NA12878.bam"
    r = runner.invoke(main, ["files", "add", str(bam), "--dataset", "ds1", "--quiet"], obj=obj)
    assert r.exit_code == 0 and "created: htsnexus_test_NA12878 BAM" in r.output, r.output
    r = runner.invoke(main, ["files", "add", str(bam), "--dataset", "ds1", "--quiet"], obj=obj)
    assert "unchanged" in r.output
    r = runner.invoke(main, ["files", "add", str(bam), "--dataset", "missing", "--quiet"], obj=obj)
    assert r.exit_code == 1 and "no dataset 'missing'" in r.output
    r = runner.invoke(main, ["files", "list", "--json"], obj=obj)
    assert '"format": "BAM"' in r.output
    obj.db.dispose()
