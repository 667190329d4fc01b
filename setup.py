"""Build hook: the notebooks and the assumptions page ship inside the wheel.

The notebooks go to ``simfunnel/notebooks/*.ipynb``, ``docs/assumptions.md`` to
``simfunnel/docs/assumptions.md``.

Everything else is configured in pyproject.toml. The notebooks live in ``notebooks/``
at the top of the repository, where JupyterLab, nbval and ``make notebooks`` use
them; a wheel carries a copy inside the package, so that ``pip install`` then
``simfunnel report`` works. An editable install reads them where they are.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


#: Pages of docs/ that the package itself shows or links (reports, ``simfunnel explain``).
SHIPPED_DOCS = ("assumptions.md",)


class BuildWithNotebooks(build_py):
    """``build_py`` that also copies the project's notebooks and shipped docs into the package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib, "simfunnel", "notebooks")
        self.mkpath(str(target))
        for notebook in sorted(Path(__file__).parent.joinpath("notebooks").glob("*.ipynb")):
            self.copy_file(str(notebook), str(target / notebook.name))
        docs = Path(self.build_lib, "simfunnel", "docs")
        self.mkpath(str(docs))
        for page in SHIPPED_DOCS:
            self.copy_file(str(Path(__file__).parent / "docs" / page), str(docs / page))


setup(cmdclass={"build_py": BuildWithNotebooks})
