"""Build hook: the notebooks ship inside the wheel, as ``simfunnel/notebooks/*.ipynb``.

Everything else is configured in pyproject.toml. The notebooks live in ``notebooks/``
at the top of the repository, where JupyterLab, nbval and ``make notebooks`` use
them; a wheel carries a copy inside the package, so that ``pip install`` then
``simfunnel report`` works. An editable install reads them where they are.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithNotebooks(build_py):
    """``build_py`` that also copies the project's notebooks into the package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib, "simfunnel", "notebooks")
        self.mkpath(str(target))
        for notebook in sorted(Path(__file__).parent.joinpath("notebooks").glob("*.ipynb")):
            self.copy_file(str(notebook), str(target / notebook.name))


setup(cmdclass={"build_py": BuildWithNotebooks})
