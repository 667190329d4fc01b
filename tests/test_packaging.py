"""pyproject.toml and environment.yml list the same dependencies."""

import re
import tomllib

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
