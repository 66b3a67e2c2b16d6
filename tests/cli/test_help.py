"""Every ``openkms`` command explains itself: ``--help`` exits 0 and shows at least one example."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from openkms.cli.main import build_parser
from tests.cli.running import openkms


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


COMMANDS = sorted(_commands(build_parser()))


def test_the_walk_finds_the_commands() -> None:
    assert {("serve",), ("iam", "create-user"), ("audit", "query"), ("usage",)} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "openkms")
def test_help_exits_zero_and_shows_an_example(command: tuple[str, ...]) -> None:
    run = openkms(*command, "--help")
    assert run.code == 0 and run.err == ""
    assert "example" in run.out.lower(), f"openkms {' '.join(command)} --help shows no example"
