"""The README's examples run, so that they cannot rot."""

import re
import shlex

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


COMMAND_BLOCKS = [
    [line[2:] for line in body.splitlines() if line.startswith("$ simfunnel ")]
    for body in blocks("console")
]


def test_the_readme_shows_commands():
    assert sum(map(len, COMMAND_BLOCKS)) >= 4


# One test per block; a block's commands run in order (a sweep, its resume, its analysis).
@pytest.mark.parametrize(
    "commands",
    [pytest.param(cmds, id=f"block{i}") for i, cmds in enumerate(COMMAND_BLOCKS) if cmds],
)
def test_console_examples_run(cli, tmp_path, commands):
    for body in blocks("yaml"):
        name = body.splitlines()[0].lstrip("# ").strip()
        (tmp_path / name).write_text(body)
    for command in commands:
        args = shlex.split(command)[1:]
        out = cli(*args, cwd=tmp_path)
        assert out.returncode == 0, (command, out.stderr)
        assert out.stdout.strip(), command


def test_error_example_is_what_the_cli_prints(cli):
    body = blocks("text")[0].splitlines()
    args = shlex.split(body[0][2:])[1:]
    out = cli(*args)
    assert out.returncode == 2
    assert out.stderr.splitlines() == body[1:]


def test_files_are_shown_before_they_are_used():
    # a reader meets my_scenario.yaml before the command that validates it
    for match in re.finditer(r"^\$ simfunnel \w+ (\S+\.ya?ml)", README, flags=re.M):
        shown = README.find(f"# {match.group(1)}\n")
        assert 0 <= shown < match.start(), match.group(0)


def test_make_lab_allows_root():
    import os
    import subprocess

    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "lab"], cwd=ROOT, capture_output=True, text=True
    )
    command = next(line for line in dry.stdout.splitlines() if "jupyter lab" in line)
    assert ("--allow-root" in command) == (os.geteuid() == 0)
