"""Every third-party package that ``server/`` and ``handlers/`` import is declared.

An import that works only because some other dependency happens to pull the
package in breaks the day that dependency drops it. The imports are read with
``ast`` (lazy imports inside functions included), each top-level module is
mapped to the distributions that provide it
(``importlib.metadata.packages_distributions``), and one of them must be named
in ``setup.cfg``: in ``install_requires``, or in an optional extra other than
``test`` (``s3``: its imports sit behind the feature that needs them).
"""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("server", "handlers")
FIRST_PARTY = {"server", "handlers"}
# modules of a dependency that need another package at run time, imported here by name
IMPLIED = {"uvicorn.protocols.http.httptools_impl": "httptools"}


def imported_modules(root: Path, sources=SOURCES) -> dict[str, set[str]]:
    """Dotted name of every absolutely imported module -> the files importing it."""
    found: dict[str, set[str]] = {}
    for source in sources:
        for path in sorted((root / source).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name, set()).add(str(path.relative_to(root)))
    return found


def requirements(setup_cfg: Path) -> dict[str, list[Requirement]]:
    """``install_requires`` and each extra of ``setup_cfg``, parsed."""
    cfg = configparser.ConfigParser()
    cfg.read(setup_cfg)
    sections = {"install_requires": cfg.get("options", "install_requires", fallback="")}
    if cfg.has_section("options.extras_require"):
        sections |= dict(cfg.items("options.extras_require"))
    return {
        name: [Requirement(line) for line in text.splitlines() if line.strip()]
        for name, text in sections.items()
    }


def undeclared(root: Path, setup_cfg: Path) -> dict[str, str]:
    """Third-party import -> why it is not covered by ``setup_cfg``."""
    declared = {
        canonicalize_name(r.name)
        for section, reqs in requirements(setup_cfg).items()
        if section != "test"
        for r in reqs
    }
    providers = importlib.metadata.packages_distributions()
    imports = imported_modules(root)
    out: dict[str, str] = {}
    for module, files in sorted(imports.items()):
        top = module.partition(".")[0]
        if top in FIRST_PARTY or top in sys.stdlib_module_names or top in out:
            continue
        dists = providers.get(top)
        where = ", ".join(sorted(files)[:3])
        if not dists:
            out[top] = f"no installed distribution provides it (imported by {where})"
        elif not {canonicalize_name(d) for d in dists} & declared:
            out[top] = f"distribution {'/'.join(sorted(dists))} is not declared ({where})"
    for module, dist in IMPLIED.items():
        if module in imports and canonicalize_name(dist) not in declared:
            out[dist] = f"needed by {module} ({', '.join(sorted(imports[module]))})"
    return out


def test_every_imported_package_is_declared():
    missing = undeclared(ROOT, ROOT / "setup.cfg")
    assert not missing, "add to setup.cfg install_requires: " + "; ".join(
        f"{name}: {why}" for name, why in missing.items()
    )


def test_install_requires_have_lower_bounds_and_no_duplicates():
    reqs = requirements(ROOT / "setup.cfg")["install_requires"]
    names = [canonicalize_name(r.name) for r in reqs]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    unbounded = [
        str(r) for r in reqs if not any(s.operator in (">=", "~=", "==", ">") for s in r.specifier)
    ]
    assert not unbounded, f"no lower bound: {unbounded}"


def test_the_check_reports_an_undeclared_import(tmp_path):
    (tmp_path / "server").mkdir()
    (tmp_path / "handlers").mkdir()
    (tmp_path / "server" / "x.py").write_text(
        "import json\nimport server.y\nfrom . import z\n\ndef f():\n    import pytest\n"
    )
    (tmp_path / "handlers" / "h.py").write_text("from sqlalchemy import select\n")
    cfg = tmp_path / "setup.cfg"
    cfg.write_text(
        "[options]\ninstall_requires =\n    SQLAlchemy>=2\n"
        "[options.extras_require]\ntest =\n    pytest>=8\n"
    )
    missing = undeclared(tmp_path, cfg)
    assert list(missing) == ["pytest"]  # a test-only extra does not count
    assert "server/x.py" in missing["pytest"]
    cfg.write_text(cfg.read_text().replace("test =", "extra =", 1))
    assert undeclared(tmp_path, cfg) == {}
