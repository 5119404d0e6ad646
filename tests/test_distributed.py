"""Only global rank 0 records: the rank from the launcher's environment."""

from __future__ import annotations

import pytest

import autolog
from autolog.distributed import global_rank, is_global_zero

LAUNCHER_VARIABLES = ("RANK", "SLURM_PROCID", "SLURM_NTASKS", "OMPI_COMM_WORLD_RANK", "PMI_RANK",
                      "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "WORLD_SIZE")


@pytest.fixture(autouse=True)
def clean_launcher_env(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("env", "zero"), [
    ({}, True),
    ({"RANK": "0"}, True),
    ({"RANK": "3"}, False),
    ({"SLURM_PROCID": "1", "SLURM_NTASKS": "4"}, False),
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, True),
    ({"OMPI_COMM_WORLD_RANK": "2"}, False),
    # Lightning's ddp launcher: LOCAL_RANK / NODE_RANK / WORLD_SIZE, no RANK
    ({"LOCAL_RANK": "1", "NODE_RANK": "0", "WORLD_SIZE": "2"}, False),
    ({"LOCAL_RANK": "0", "NODE_RANK": "1", "WORLD_SIZE": "4"}, False),
    ({"LOCAL_RANK": "0", "NODE_RANK": "0", "WORLD_SIZE": "2"}, True),
    ({"LOCAL_RANK": "1", "WORLD_SIZE": "1"}, True),  # one process: LOCAL_RANK says nothing
])
def test_rank_from_the_environment(monkeypatch, env, zero):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_global_zero() is zero
    assert (global_rank() == 0) is zero


def test_other_ranks_record_nothing(monkeypatch, store):
    monkeypatch.setenv("RANK", "1")
    with autolog.start_run() as run:
        run.log_metric("loss", 1.0)
    autolog.log_metric("loss", 2.0)
    autolog.end_run()
    assert not run.active and autolog.list_runs() == []
