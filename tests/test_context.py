"""Run context: git state, entry point, host and packages, captured off the training thread."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autolog

from .helpers import clean_env


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_entry_point_and_packages(tmp_path, store):
    repo = tmp_path / "project"
    repo.mkdir()
    script = repo / "train.py"
    script.write_text(textwrap.dedent("""
        import autolog
        with autolog.start_run() as run:
            run.log_metric("loss", 0.5)
        print(run.id)
    """))
    _git(repo, "init", "-q", "-b", "feature-x")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "first")
    commit = _git(repo, "rev-parse", "HEAD")
    (repo / "train.py").write_text(script.read_text() + "# an uncommitted change\n")

    out = subprocess.run([sys.executable, str(script), "--lr", "0.1"], env=clean_env(store),
                         cwd=repo, capture_output=True, text=True, timeout=60, check=True)
    record = autolog.get_run(out.stdout.strip())
    tags = record.tags
    assert tags["autolog.git.commit"] == commit
    assert tags["autolog.git.branch"] == "feature-x"
    assert tags["autolog.git.dirty"] == "true"
    assert tags["autolog.source.entry_point"] == str(script)
    assert tags["autolog.source.argv"].endswith("train.py --lr 0.1")
    assert tags["autolog.python.version"] == ".".join(map(str, sys.version_info[:3]))
    assert tags["autolog.host"] and tags["autolog.version"] == autolog.__version__
    requirements = record.artifact_path("requirements.txt").read_text().splitlines()
    assert any(line.startswith("pluggy==") for line in requirements)
    assert requirements == sorted(requirements, key=str.lower)


def test_child_runs_share_the_parents_context(store):
    with autolog.start_run("parent") as parent, autolog.start_run("child") as child:
        pass
    assert "autolog.python.version" in autolog.get_run(parent.id).tags
    assert "autolog.python.version" not in autolog.get_run(child.id).tags
    assert autolog.get_run(child.id).parent_id == parent.id


@pytest.mark.slow
def test_context_tags_and_requirements_land_under_load(tmp_path, store):
    """Item 5: 32 runs at once on a small machine all get their context before their end (it
    was dropped after 5 s, with a "has ended" warning about logging the user never did)."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import autolog
        with autolog.start_run() as run:
            run.log_metric("loss", 0.5)
        print(run.id)
    """))
    procs = [subprocess.Popen([sys.executable, str(script)], env=clean_env(store), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(32)]
    outputs = [proc.communicate(timeout=280) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    for out, err in outputs:
        assert "has ended" not in err and "not recorded" not in err, err
        record = autolog.get_run(out.strip())
        assert record.tags["autolog.python.version"] and record.tags["autolog.host"]
        assert "requirements.txt" in record.artifacts
        assert record.status == "FINISHED"


def test_the_user_tag_is_getpass_s_answer(monkeypatch):
    """``autolog.user`` is what ``getpass.getuser()`` says (read without importing getpass):
    the first of its environment variables, else the password database's name for the uid."""
    import getpass

    from autolog.context import _user

    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    assert _user() == getpass.getuser()
    monkeypatch.setenv("USERNAME", "from-username")
    monkeypatch.setenv("USER", "from-user")
    assert _user() == getpass.getuser() == "from-user"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_one_git_status_says_what_diff_and_ls_files_would(tmp_path):
    """The dirty tag and the code snapshot read one ``git status``: its changed files are what
    ``git diff HEAD --name-only`` lists (a rename by its new name, staged and unstaged changes,
    a deletion), its untracked files what ``git ls-files --others --exclude-standard`` lists."""
    from autolog.capture import code

    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    for name in ("moved.py", "edited.py", "staged.py", "deleted.py", "sub/kept.py"):
        (repo / name).write_text(f"# {name}\n")
    (repo / ".gitignore").write_text("*.log\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    assert code.status(str(repo), True) == code.Status([], [])
    code.status.cache_clear()  # read once per process: this test changes the tree since
    _git(repo, "mv", "moved.py", "renamed file.py")
    (repo / "edited.py").write_text("# changed\n")
    (repo / "staged.py").write_text("# changed and staged\n")
    _git(repo, "add", "staged.py")
    (repo / "deleted.py").unlink()
    (repo / "new.py").write_text("# new\n")
    (repo / "sub" / "deeper").mkdir()
    (repo / "sub" / "deeper" / "é.txt").write_text("x\n")
    (repo / "run.log").write_text("ignored\n")

    found = code.status(str(repo), True)
    diff = _git(repo, "-c", "core.quotepath=off", "diff", "HEAD", "--name-only")
    others = _git(repo, "-c", "core.quotepath=off", "ls-files", "--others", "--exclude-standard")
    assert sorted(found.changed) == sorted(diff.splitlines())
    assert found.untracked == sorted(others.splitlines()) == ["new.py", "sub/deeper/é.txt"]
    assert code.status(str(repo), False) == code.Status(found.changed, [])
    assert code.work_tree(repo / "sub" / "deeper") == repo
    assert code.status(str(tmp_path), True) is None  # not a work tree
