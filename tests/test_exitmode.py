"""Where a detached delivery process would die with the job, the exit waits (issue 18)."""

from __future__ import annotations

import os

import pytest

from autolog.exitmode import must_wait, why_wait


@pytest.mark.parametrize(("variable", "said"), [
    ("SLURM_JOB_ID", "SLURM"), ("KUBERNETES_SERVICE_HOST", "Kubernetes"), ("PBS_JOBID", "PBS"),
    ("LSB_JOBID", "LSF"), ("AWS_BATCH_JOB_ID", "AWS Batch"), ("SM_TRAINING_ENV", "SageMaker"),
    ("CI", "CI job"), ("JENKINS_URL", "Jenkins"),
])
def test_a_job_that_ends_with_the_script_waits(variable: str, said: str) -> None:
    reason = why_wait({variable: "1"})
    assert reason is not None and said in reason


def test_a_plain_shell_may_detach() -> None:
    assert why_wait({"CI": "false", "HOME": "/root"}) is None or os.getppid() == 1


def test_the_mode_setting_decides_first() -> None:
    assert must_wait("wait") == "AUTOLOG_EXIT_MODE=wait"
    assert must_wait("detach") is None
