"""The README's examples run, so that they cannot rot."""

import re
import shlex
from pathlib import Path

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def blocks(kind):
    return [body for k, body in BLOCKS if k == kind]


def test_readme_opens_with_the_two_commands():
    first = blocks("console")[0]
    assert first.splitlines()[0].startswith("make demo")
    assert first.splitlines()[1].startswith("make test")


@pytest.mark.parametrize("code", blocks("python"))
def test_python_examples_run(code):
    exec(compile(code, "README.md", "exec"), {})


def commands(body):
    """The block's `$ simfunnel` lines, a line ending in a backslash joined to the next."""
    joined = re.sub(r"\s*\\\n\s*", " ", body)
    return [line[2:] for line in joined.splitlines() if line.startswith("$ simfunnel ")]


COMMAND_BLOCKS = [commands(body) for body in blocks("console")]
WIDTH = 80


def test_the_readme_shows_commands():
    assert sum(map(len, COMMAND_BLOCKS)) >= 4


# One test per block; a block's commands run in order (a sweep, its resume, its analysis).
# They run in an 80-column (pseudo-)terminal, and every line they print must fit it.
@pytest.mark.parametrize(
    "commands",
    [pytest.param(cmds, id=f"block{i}") for i, cmds in enumerate(COMMAND_BLOCKS) if cmds],
)
def test_console_examples_run_in_80_columns(tmp_path, commands):
    for body in blocks("yaml"):
        name = body.splitlines()[0].lstrip("# ").strip()
        (tmp_path / name).write_text(body)
    for command in commands:
        args = shlex.split(command)[1:]
        returncode, output = _in_a_terminal(args, tmp_path, WIDTH)
        assert returncode == 0, (command, output)
        assert output.strip(), command
        wide = [line for line in output.splitlines() if len(line) > WIDTH]
        assert not wide, (command, wide)


def _in_a_terminal(args, cwd, width, timeout=600):
    """Run the real CLI in a pseudo-terminal ``width`` columns wide (``COLUMNS`` set too).

    What a user at an 80-column terminal sees: stdout and stderr together, as printed.
    """
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, width, 0, 0))
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore", COLUMNS=str(width))
    proc = subprocess.Popen(
        [sys.executable, "-m", "simfunnel", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=side,
        stderr=side,
        env=env,
    )
    os.close(side)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    returncode = proc.wait(timeout=timeout)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    # a progress bar redraws its line with a carriage return: keep what is left on screen
    return returncode, "\n".join(line.split("\r")[-1] for line in text.split("\n"))


def test_readme_code_fits_80_columns():
    wide = [line for _, body in BLOCKS for line in body.splitlines() if len(line) > WIDTH]
    assert not wide


def test_console_lines_are_continued_with_a_backslash():
    assert commands("$ simfunnel run a \\\n    --seed 1\n$ simfunnel list\n") == [
        "simfunnel run a --seed 1",
        "simfunnel list",
    ]


def test_error_example_is_what_the_cli_prints(cli):
    body = blocks("text")[0].splitlines()
    args = shlex.split(body[0][2:])[1:]
    out = cli(*args)
    assert out.returncode == 2
    assert out.stderr.splitlines() == body[1:]


def test_files_are_shown_before_they_are_used():
    # a reader meets my_scenario.yaml before the command that validates it, and
    # my_calibrated.yaml is written (--out) by a command before the one that reads it
    for match in re.finditer(r"^\$ simfunnel \w+ (\S+\.ya?ml)", README, flags=re.M):
        name = match.group(1)
        shown = README.find(f"# {name}\n")
        written = README.find(f"--out {name}")
        first = min(i for i in (shown, written, len(README)) if i >= 0)
        assert first < match.start(), match.group(0)


def test_make_lab_allows_root():
    import os
    import subprocess

    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "lab"], cwd=ROOT, capture_output=True, text=True
    )
    command = next(line for line in dry.stdout.splitlines() if "jupyter lab" in line)
    assert ("--allow-root" in command) == (os.geteuid() == 0)


def _relative_links(text, anchors=False):
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:", target) and not target.startswith("#"):
            yield target if anchors else target.split("#")[0]


def _anchors(page):
    # GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_relative_links_point_to_files(page):
    links = list(_relative_links(page.read_text()))
    missing = [link for link in links if not (page.parent / link).exists()]
    assert not missing, missing
    for link in _relative_links(page.read_text(), anchors=True):
        path, _, anchor = link.partition("#")
        if anchor and path.endswith(".md"):
            assert anchor in _anchors(page.parent / path), link


def test_the_readme_links_every_docs_page():
    linked = {Path(link).name for link in _relative_links(README)}
    pages = {p.name for p in DOCS[1:]}
    assert pages <= linked, pages - linked
    assert {"assumptions.md", "scenario-reference.md", "calibration.md"} <= pages
