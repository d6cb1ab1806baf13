"""The ``lbprov`` command's way out: once a command is done, the heap is frozen before the
interpreter tears itself down (:func:`lbprov.cli.before_exit`); ``main`` called with its arguments
(by a test, or as a library) leaves the heap alone.

Why: the served demo took 5-11 s to exit after Ctrl-C at load 15-18, almost all of it in the
interpreter's last garbage collections over the emulators' heap, after every stop step was done.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from lbprov.cli import main


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()  # this process goes on running tests: its heap must be collected as before


def test_the_process_command_freezes_the_heap_once_it_is_done(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["lbprov", "version"])
    assert main() == 0
    assert "lbprov" in capsys.readouterr().out
    assert gc.get_freeze_count() > 0


def test_main_called_with_its_arguments_leaves_the_heap_alone(
    unfrozen: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["version"]) == 0
    assert "lbprov" in capsys.readouterr().out
    assert gc.get_freeze_count() == 0
