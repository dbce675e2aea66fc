"""The README's command line section and ``kittylab --help`` agree: every command the help lists is shown in the
section's command blocks, and every ``kittylab COMMAND [SUBCOMMAND] --flag`` shown there is one the parser takes."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from kittylab.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
#: What ends the command a README line shows (a comment, the next command of a shell line).
ENDS = {"#", ";", "&&", "||"}


def command_line_section() -> str:
    """The README's ``## Command line`` section, up to the next section of the same level."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Command line\n(.*?)(?=^## )", readme, re.M | re.S)
    assert match, "README.md has no '## Command line' section"
    return match.group(1)


def shown_commands(section: str) -> list[list[str]]:
    """Each ``kittylab ...`` of the section's ```sh blocks, as its words (global options kept)."""
    blocks = re.findall(r"^```sh\n(.*?)^```", section, re.M | re.S)
    assert blocks, "the command line section shows no ```sh block"
    shown = []
    for line in "\n".join(blocks).splitlines():
        code, _, comment = line.partition(" #")  # a comment may show a command too, in plain words
        words = [*shlex.split(code), "#", *comment.split()]
        for start in [i for i, word in enumerate(words) if word == "kittylab"]:
            rest = words[start + 1:]
            end = next((i for i, word in enumerate(rest) if word in ENDS or word == "kittylab"), len(rest))
            shown.append(rest[:end])
    return shown


def help_commands() -> list[str]:
    """The commands ``kittylab --help`` lists (a line that starts with two spaces and a name)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["--help"])
    return re.findall(r"^  ([a-z][a-z0-9-]*)(?:\s|$)", out.getvalue(), re.M)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def takes_a_value(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions if action.nargs != 0 for flag in action.option_strings}


def resolve(words: list[str]) -> tuple[list[str], argparse.ArgumentParser, list[str]]:
    """``kittylab WORDS``: its command path (``issue client``), that command's parser and the flags given to it."""
    parser = build_parser()
    rest = list(words)
    while rest and rest[0].startswith("--"):  # the global options come before the command
        flag = rest.pop(0)
        assert flag in {f for a in parser._actions for f in a.option_strings}, f"kittylab {flag} is no global option"
        if flag in takes_a_value(parser):
            rest.pop(0)
    path: list[str] = []
    while subcommands(parser):
        assert rest, f"kittylab {' '.join(words)}: a command is missing"
        name = rest.pop(0)
        assert name in subcommands(parser), f"kittylab {' '.join([*path, name])}: no such command"
        path.append(name)
        parser = subcommands(parser)[name]
    flags = [word.strip("[]").split("=")[0] for word in rest if word.strip("[").startswith("--")]
    return path, parser, flags


def test_the_help_lists_the_command_families():
    """The parsing below reads what the parser registered: it can fail."""
    listed = help_commands()
    assert listed == [name for _, names in build_parser().families for name in names]
    assert {"init", "issue", "roster", "export-openssl-db"} <= set(listed)


def test_every_command_of_the_help_is_shown_in_the_readme():
    shown = {resolve(words)[0][0] for words in shown_commands(command_line_section())}
    missing = [name for name in help_commands() if name not in shown]
    assert not missing, f"README's command line section shows no `kittylab {' / '.join(missing)}`"


def test_every_command_the_readme_shows_is_real_with_real_flags():
    shown = shown_commands(command_line_section())
    assert len(shown) > 30
    for words in shown:
        path, parser, flags = resolve(words)
        known = {flag for action in parser._actions for flag in action.option_strings}
        unknown = [flag for flag in flags if flag not in known]
        assert not unknown, f"kittylab {' '.join(path)} takes no {', '.join(unknown)} (README: kittylab {' '.join(words)})"


def test_a_wrong_command_or_flag_would_be_found():
    assert resolve(["issue", "client", "x", "--p12"])[0] == ["issue", "client"]
    for words in (["issue", "robot", "x"], ["lisst"], ["--homme", "x", "list"]):
        with pytest.raises(AssertionError):
            resolve(words)
    assert resolve(["crl", "[--dayz", "3]"])[2] == ["--dayz"]
