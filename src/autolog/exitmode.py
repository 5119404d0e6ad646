"""Whether this process may leave delivery to a detached process when it exits.

Detaching is safe when a process that outlives the script keeps running. It is not where the
end of the script ends everything it started: a batch scheduler's job step (its processes are
killed, or its cgroup is, when the step ends), a container whose main process is the script
(or its parent), a systemd service (the unit's control group is killed when its main process
exits), a CI job (the runner kills what is left). There :func:`must_wait` names the reason and
the exit waits for the backends, as ``AUTOLOG_EXIT_MODE=wait`` does everywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

__all__ = ["must_wait", "why_wait"]

#: environment variables that say "a job whose processes end with it", and what they mean
JOB_VARIABLES = (
    ("SLURM_JOB_ID", "a SLURM job (its processes are killed when the job step ends)"),
    ("SLURM_JOBID", "a SLURM job (its processes are killed when the job step ends)"),
    ("KUBERNETES_SERVICE_HOST", "a Kubernetes pod (its processes end with the container)"),
    ("PBS_JOBID", "a PBS/Torque job"),
    ("LSB_JOBID", "an LSF job"),
    ("SGE_TASK_ID", "a Grid Engine job"),
    ("_CONDOR_JOB_AD", "an HTCondor job"),
    ("AWS_BATCH_JOB_ID", "an AWS Batch job"),
    ("SM_TRAINING_ENV", "a SageMaker training job"),
    ("CLOUD_ML_JOB_ID", "a Vertex AI training job"),
    ("AZUREML_RUN_ID", "an Azure ML job"),
    ("MODAL_TASK_ID", "a Modal task"),
    ("TF_BUILD", "an Azure Pipelines job"),
    ("JENKINS_URL", "a Jenkins build"),
)
CONTAINER_MARKERS = ("/.dockerenv", "/run/.containerenv")


def must_wait(mode: str) -> str | None:
    """Why the exit must wait for the backends (``AUTOLOG_EXIT_MODE`` is ``mode``), or None
    when delivery may be detached."""
    if mode == "wait":
        return "AUTOLOG_EXIT_MODE=wait"
    if os.name != "posix":
        return "detaching is implemented on POSIX systems only"
    if mode == "detach":
        return None
    return why_wait()


def why_wait(environ: Mapping[str, str] | None = None) -> str | None:
    """The reason a detached process would not outlive this one, or None."""
    env = os.environ if environ is None else environ
    for name, meaning in JOB_VARIABLES:
        if env.get(name):
            return f"{meaning}; {name} is set"
    if env.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return "a CI job (CI is set; the runner ends what the job leaves behind)"
    if os.getpid() == 1:
        return "this process is the container's main process (PID 1)"
    if os.getppid() == 1 and _in_container(env):
        return "this process is the child of a container's main process"
    if _systemd_service(env):
        return "a systemd service (its processes are killed when the main one exits)"
    return None


def _in_container(env: Mapping[str, str]) -> bool:
    return bool(env.get("container")) or any(os.path.exists(p) for p in CONTAINER_MARKERS)


def _systemd_service(env: Mapping[str, str]) -> bool:
    """stderr is the journal stream systemd gave the unit (the documented check: compare
    ``JOURNAL_STREAM``'s device and inode with stderr's)."""
    stream = env.get("JOURNAL_STREAM", "")
    if not stream:
        return False
    try:
        device, inode = (int(part) for part in stream.split(":"))
        stat = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (stat.st_dev, stat.st_ino) == (device, inode)
