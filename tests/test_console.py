"""Console capture at the Python level (the default): what is printed reaches the terminal as it
was, and each active run's ``console.log`` as timestamped lines, progress bars collapsed, the
last lines kept."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

import autolog
from autolog.capture.console import CONSOLE_LOG, ConsoleLog

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def _lines(run: autolog.Run) -> list[str]:
    record = autolog.get_run(run.id)
    text = record.artifact_path(CONSOLE_LOG).read_text(encoding="utf-8")
    lines = text.splitlines()
    assert all(STAMP.match(line) for line in lines), lines
    return [STAMP.sub("", line) for line in lines]


def test_printed_lines_reach_the_terminal_unchanged_and_the_run_timestamped(capsys):
    autolog.enable()
    print("before the run")  # after enable(): handed to the next run
    with autolog.start_run() as run:
        print("épochs", 3)
        sys.stdout.write("no ")
        sys.stdout.write("newline yet\n")
        print("to stderr", file=sys.stderr)
        sys.stdout.write("crlf line\r\n")
    captured = capsys.readouterr()
    assert captured.out == "before the run\népochs 3\nno newline yet\ncrlf line\r\n"
    assert captured.err == "to stderr\n"
    assert _lines(run) == ["before the run", "épochs 3", "no newline yet",
                           "[stderr] to stderr", "crlf line"]
    record = autolog.get_run(run.id)
    assert record.tags["autolog.console.lines"] == "5"
    assert record.tags["autolog.console.dropped_lines"] == "0"
    assert CONSOLE_LOG in record.artifacts


def test_a_tqdm_bar_is_one_line_in_its_last_state(capsys):
    tqdm = pytest.importorskip("tqdm").tqdm
    with autolog.start_run() as run:
        for _ in tqdm(range(100), mininterval=0, file=sys.stderr,
                      bar_format="{l_bar}{bar:10}| {n_fmt}/{total_fmt}"):
            pass
        print("after the bar")
    err = capsys.readouterr().err
    assert err.count("\r") > 50  # the terminal got every state
    assert _lines(run) == ["[stderr] 100%|██████████| 100/100", "after the bar"]


def test_only_the_last_lines_are_kept_and_the_dropped_ones_counted(monkeypatch, capsys):
    monkeypatch.setenv("AUTOLOG_CONSOLE_MAX_LINES", "100")
    monkeypatch.setenv("AUTOLOG_FLUSH_INTERVAL", "0.05")
    with autolog.start_run() as run:
        for i in range(1000):
            print(f"line {i}")
            if i % 250 == 0:
                time.sleep(0.1)  # the writer trims while the run goes on
    capsys.readouterr()
    assert _lines(run) == [f"line {i}" for i in range(900, 1000)]
    tags = autolog.get_run(run.id).tags
    assert (tags["autolog.console.lines"], tags["autolog.console.dropped_lines"]) == \
        ("100", "900")


def test_the_journal_writer_writes_the_console_while_the_run_goes_on(monkeypatch, capsys):
    monkeypatch.setenv("AUTOLOG_FLUSH_INTERVAL", "0.05")
    with autolog.start_run() as run:
        print("early")
        path = run.path / "artifacts" / CONSOLE_LOG
        deadline = time.monotonic() + 10
        while not (path.exists() and "early" in path.read_text()) and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        assert path.read_text().endswith(" early\n")


def test_capture_console_off(monkeypatch, capsys):
    monkeypatch.setenv("AUTOLOG_CAPTURE_CONSOLE", "0")
    with autolog.start_run() as run:
        print("not kept")
    assert capsys.readouterr().out == "not kept\n"
    record = autolog.get_run(run.id)
    assert CONSOLE_LOG not in record.artifacts
    assert not (record.artifacts_dir / CONSOLE_LOG).exists()
    assert "write" not in vars(sys.stdout)


def test_enable_capture_false_turns_it_off_and_the_wrapper_is_removed_at_reset(capsys):
    autolog.enable(capture=False)
    with autolog.start_run() as run:
        print("not kept")
    assert CONSOLE_LOG not in autolog.get_run(run.id).artifacts
    autolog.enable(capture=["console"])
    with autolog.start_run() as run:
        print("kept")
    assert _lines(run) == ["kept"]
    assert "write" in vars(sys.stdout)
    from autolog import testing

    testing.reset()
    assert "write" not in vars(sys.stdout)
    with pytest.raises(autolog.ConfigError, match=r"unknown part.*screen"):
        autolog.enable(capture=["screen"])


def test_child_runs_share_their_parent_s_console(capsys):
    with autolog.start_run() as parent:
        with autolog.start_run() as child:
            print("inside the child")
        print("after it")
    assert _lines(parent) == ["inside the child", "after it"]
    assert CONSOLE_LOG not in autolog.get_run(child.id).artifacts


def test_a_line_that_never_ends_is_cut(tmp_path: Path):
    log = ConsoleLog(tmp_path / "console.log", 10)
    log.chunks.append((0.0, "stdout", "x" * 200_000))
    log.write()
    log.chunks.append((0.0, "stdout", "y\n"))
    assert log.finish() == (2, 0)
    first, second = (tmp_path / "console.log").read_text().splitlines()
    assert first.endswith("x... [" + str(200_000 - 64 * 1024) + " more characters]")
    assert second.endswith(" y")
