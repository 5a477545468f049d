"""Each acceleration fits the installed dependency it reaches into, that dependency
is inside the range setup.cfg pins, and a changed layout fails loudly, naming the
dependency, its version and the switch that turns the acceleration off."""

from __future__ import annotations

import configparser
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from server.settings import Settings, SettingsError
from server.web import accel
from server.web.accel import LayoutChanged, zerocopy

SETUP_CFG = Path(__file__).resolve().parents[3] / "setup.cfg"

# acceleration -> the distributions whose internals it uses
TOUCHES = {"zerocopy": ("uvicorn",)}
CHECKS = {"zerocopy": zerocopy.check_layout}


def pinned() -> dict[str, Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    lines = cfg["options"]["install_requires"].strip().splitlines()
    return {(r := Requirement(line.strip())).name.lower(): r for line in lines if line.strip()}


def test_every_acceleration_is_listed_and_checked():
    assert set(accel.NAMES) == set(TOUCHES) == set(CHECKS)


@pytest.mark.parametrize("name", accel.NAMES)
def test_the_installed_dependency_is_in_the_pinned_range_and_fits(name):
    requirements = pinned()
    for dist in TOUCHES[name]:
        req = requirements[dist]
        assert req.specifier, f"{dist} has no version range in setup.cfg"
        assert any(spec.operator in ("<", "<=", "~=", "==") for spec in req.specifier), (
            f"{dist} has no upper bound in setup.cfg: {req}"
        )
        assert req.specifier.contains(version(dist)), (
            f"{dist} {version(dist)} is outside the tested range {req.specifier}"
        )
    CHECKS[name]()  # the internals it uses are there, with the expected shape


def test_every_web_dependency_is_pinned_to_a_range():
    requirements = pinned()
    for dist in ("connexion", "flask", "werkzeug", "starlette", "uvicorn", "gunicorn"):
        assert any(s.operator == "<" for s in requirements[dist].specifier), dist
    for dist in ("uvicorn-worker", "httptools"):
        assert any(s.operator == "<" for s in requirements[dist].specifier), dist


@pytest.mark.parametrize(
    "name,dist,break_it",
    [
        (
            "zerocopy",
            "uvicorn",
            lambda mp: mp.setattr(
                zerocopy, "CYCLE_ATTRIBUTES", (*zerocopy.CYCLE_ATTRIBUTES, "gone")
            ),
        ),
    ],
)
def test_a_changed_layout_fails_loudly_naming_the_dependency(monkeypatch, name, dist, break_it):
    break_it(monkeypatch)
    with pytest.raises(LayoutChanged) as info:
        CHECKS[name]()
    message = str(info.value)
    assert f"{dist} {version(dist)} changed" in message
    assert f"GENOMEPORT_ACCEL without {name}" in message


def test_the_switch_names_accelerations():
    assert accel.enabled(Settings()) == frozenset(accel.NAMES)
    assert accel.enabled(Settings(accel="none")) == frozenset()
    assert accel.enabled(Settings(accel=" zerocopy ")) == {"zerocopy"}
    with pytest.raises(SettingsError, match="known: zerocopy"):
        accel.enabled(Settings(accel="turbo"))
    assert Settings.from_env({"GENOMEPORT_ACCEL": "none"}).accel == "none"


def test_no_dependency_internals_outside_accel():
    """The private attributes the accelerations use appear nowhere else in the node."""
    root = Path(__file__).resolve().parents[3]
    private = ("_middleware_app", "._fn", "_matcher", "_sendfile_native", "RequestResponseCycle")
    offenders = []
    for package in ("server", "handlers"):
        for path in (root / package).rglob("*.py"):
            if "accel" in path.relative_to(root).parts:
                continue
            text = path.read_text()
            offenders += [f"{path.relative_to(root)}: {p}" for p in private if p in text]
    assert not offenders
