"""pyproject.toml and environment.yml list the same dependencies."""

import html
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import yaml
from conftest import ROOT

# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"dask": "dask", "distributed": "dask"}


def norm(name):
    return re.split(r"[\[<>=!~ ]", name.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pypi = {norm(d) for d in project["dependencies"]}
    for deps in project["optional-dependencies"].values():
        pypi |= {norm(d) for d in deps if not d.startswith("simfunnel")}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {norm(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    conda = {CONDA_TO_PYPI.get(c, c) for c in conda}
    assert conda == pypi


PIP = [sys.executable, "-m", "pip"]
SMALL = [
    "--quiet",
    "-p",
    "scenarios",
    "[volume_heavy, quality_heavy]",
    "-p",
    "replications",
    "2",
    "-p",
    "team_sizes",
    "[5]",
    "-p",
    "overrides",
    '{"run.horizon_days": 60, "run.warmup_days": 7}',
    "-p",
    "backend",
    "serial",
]


def test_a_wheel_carries_the_notebooks_and_makes_a_report(tmp_path):
    """Build a wheel, install it in a fresh venv, and run a small report from there.

    The venv reuses the project's installed dependencies (a .pth line to .venv's
    site-packages) and installs the wheel with --no-deps, so it needs no index; the
    wheel is built with pip's build isolation from the local package index.
    """
    source = tmp_path / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "simfunnel", source / "simfunnel", ignore=ignore)
    shutil.copytree(ROOT / "notebooks", source / "notebooks", ignore=ignore)
    shutil.copytree(ROOT / "docs", source / "docs", ignore=ignore)
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("simfunnel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.rsplit("/", 1)[-1] for n in names if n.startswith("simfunnel/notebooks/")}
    assert shipped == {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert "simfunnel/docs/assumptions.md" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the project's dependencies, after the venv's own site-packages (where the wheel goes)
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", "-q", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    where = subprocess.run(
        [str(python), "-c", "import simfunnel.reporting.report as r; print(r.NOTEBOOK_DIR)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert Path(where.stdout.strip()) == Path(site) / "simfunnel" / "notebooks", where.stderr
    page = subprocess.run(
        [str(python), "-c", "from simfunnel.assumptions import assumptions_path as a; print(a())"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    located = Path(page.stdout.strip())
    assert located == Path(site) / "simfunnel" / "docs" / "assumptions.md", page.stderr
    assert located.read_text() == (ROOT / "docs" / "assumptions.md").read_text()
    out = tmp_path / "report"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    # the dependencies' data files (nbconvert's templates), as a full install would have
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    result = subprocess.run(
        [str(venv / "bin" / "simfunnel"), "report", "volume_vs_quality", "--out", str(out), *SMALL],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    facts = json.loads((out / "volume_vs_quality.json").read_text())
    page = html.unescape((out / "volume_vs_quality.html").read_text())
    assert facts["verdicts"]["cac"] in page
    assert facts["provenance"]["replications"] == 2
    # the provenance box links the assumptions page, which the wheel put beside the report
    assert 'href="assumptions.md"' in page
    assert (out / "assumptions.md").read_text() == (ROOT / "docs" / "assumptions.md").read_text()
