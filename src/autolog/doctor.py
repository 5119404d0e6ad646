"""What ``autolog doctor`` reports: versions, frameworks, backends, samplers and plugins, and
every problem found, each with its fix.

The problems are those of :mod:`autolog.checks` (what the environment and the installed
packages say) and, unless ``network=False``, what the configured remote backends answer: one
real request each, bounded in time: ``autolog server``'s ``/api/v1/info`` and the token's scope,
an MLflow tracking server's REST API, W&B's API in online mode.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from typing import Any

from ._version import __version__
from .checks import Problem, settings_of, static_problems
from .plugins import get_plugins, installed_version

__all__ = ["report"]

TIMEOUT = 5.0  # seconds for each network check


def report(*, network: bool = True, timeout: float = TIMEOUT,
           environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    settings, _ = settings_of(env)
    plugins = get_plugins(settings)
    problems = static_problems(env)
    notes = _notes(settings, env)
    if network:
        broken = {p.check for p in problems}
        for name in settings.backend:
            if name in _REMOTE and name not in broken:
                found, note = _REMOTE[name](settings, env, timeout)
                problems += found
                notes += [note] if note else []
    return {
        "autolog": __version__,
        "python": platform.python_version(),
        "store": os.path.abspath(os.path.expanduser(settings.dir)),
        "configured_backends": list(settings.backend),
        "frameworks": [_framework(i) for i in plugins.integrations().values()],
        "backends": [{"name": "local", "installed": __version__, "configured": True}]
        + [_backend(name, cls, settings) for name, cls in sorted(plugins.backends().items())],
        "samplers": [_sampler(cls, settings) for cls in plugins.samplers()],
        "plugins": plugins.names(),
        "failed_plugins": plugins.failed,
        "server": _server(),
        "notes": notes,
        "problems": [p.as_dict() for p in problems],
    }


def _backend(name: str, cls: Any, settings: Any) -> dict[str, Any]:
    dists = tuple(cls.distributions or ())
    return {"name": name, "installed": installed_version(dists) if dists else "built in",
            "configured": name in settings.backend, **_tested(name, "")}


def _framework(integration: Any) -> dict[str, Any]:
    installed = integration.installed_version()
    if installed is None:
        status = "not installed"
    elif integration.is_supported(installed):
        status = "supported: autolog.enable() records it"
    else:
        status = f"UNSUPPORTED version (needs {integration.supported})"
    return {"name": integration.name, "installed": installed,
            **_tested(integration.name, integration.supported), "status": status}


def _tested(name: str, supported: str) -> dict[str, Any]:
    """The range and the versions tested, from compatibility.toml (a plugin's: its own)."""
    from .compatibility import tested

    found = tested(name)
    if found is None:
        return {"supported": supported or "any", "tested": None}
    return found


def _sampler(cls: Any, settings: Any) -> dict[str, Any]:
    from .system import SamplerUnavailable

    try:
        sampler = cls(settings)
    except SamplerUnavailable as why:
        return {"name": cls.name, "status": f"off: {why}"}
    except Exception as exc:
        return {"name": cls.name, "status": f"FAILED: {type(exc).__name__}: {exc}"}
    try:
        tags = sampler.static_tags()
    finally:
        sampler.close()
    facts = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in list(tags.items())[:4])
    return {"name": cls.name, "status": f"on ({facts})" if facts else "on"}


def _server() -> dict[str, Any]:
    """Can ``autolog server`` run here: on SQLite always; on PostgreSQL with the extra."""
    psycopg = installed_version(("psycopg",))
    return {"sqlite": True, "postgresql": psycopg is not None,
            "status": "ready (SQLite" + (f"; PostgreSQL with psycopg {psycopg})" if psycopg
                                         else "; PostgreSQL needs pip install "
                                         "'autolog-ml[server]')")}


def _notes(settings: Any, env: Mapping[str, str]) -> list[str]:
    """What is fine but worth knowing."""
    notes = []
    if "mlflow" in settings.backend and not env.get("MLFLOW_TRACKING_URI", "").strip():
        notes.append("MLFLOW_TRACKING_URI is not set: MLflow records into its default store "
                     "in each training's working directory (./mlruns)")
    return notes


# -- network checks -----------------------------------------------------------------------------


def _http(settings: Any, env: Mapping[str, str], timeout: float
          ) -> tuple[list[Problem], str | None]:
    """Reach the server, check the token, and that it may write (its scope)."""
    import requests

    url = str(settings.http_url or "").rstrip("/")
    if not url.startswith(("http://", "https://")):
        return [], None  # said without the network
    token = settings.http_token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        info = requests.get(f"{url}/api/v1/info", headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        return [Problem("http", f"cannot reach the autolog server at {url} "
                        f"({type(exc).__name__})", "start it (`autolog server`) or correct "
                        "AUTOLOG_HTTP_URL")], None
    if info.status_code == 401:
        fix = "AUTOLOG_HTTP_TOKEN=a token from `autolog server token create NAME`"
        return [Problem("AUTOLOG_HTTP_TOKEN", f"the server at {url} refused "
                        + ("the token (revoked or mistyped)" if token else "to answer without "
                           "a token"), fix)], None
    if info.status_code != 200:
        return [Problem("http", f"{url}/api/v1/info answered {info.status_code}: is this an "
                        "autolog server?", "correct AUTOLOG_HTTP_URL")], None
    version = info.json().get("version", "?")
    session = requests.get(f"{url}/api/v1/session", headers=headers, timeout=timeout)
    writes = session.json().get("can_write") if session.status_code == 200 else None
    if writes is False:
        return [Problem("AUTOLOG_HTTP_TOKEN", "the token may read but not write runs",
                        "a write token: `autolog server token create NAME --scope write`")], None
    return [], f"http: autolog server {version} at {url}, token may write"


def _mlflow(settings: Any, env: Mapping[str, str], timeout: float
            ) -> tuple[list[Problem], str | None]:
    """A tracking server: its REST API answers, with the credentials MLflow would send."""
    uri = env.get("MLFLOW_TRACKING_URI", "").strip().rstrip("/")
    if not uri.startswith(("http://", "https://")):
        return [], None  # a local store: checked without the network
    import requests

    headers: dict[str, str] = {}
    auth = None
    if env.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"
    elif env.get("MLFLOW_TRACKING_USERNAME"):
        auth = (env["MLFLOW_TRACKING_USERNAME"], env.get("MLFLOW_TRACKING_PASSWORD", ""))
    try:
        answer = requests.get(f"{uri}/api/2.0/mlflow/experiments/search",
                              params={"max_results": 1}, headers=headers, auth=auth,
                              timeout=timeout)
    except requests.RequestException as exc:
        return [Problem("mlflow", f"cannot reach the MLflow tracking server at {uri} "
                        f"({type(exc).__name__})", "start it, or correct MLFLOW_TRACKING_URI")
                ], None
    if answer.status_code in (401, 403):
        return [Problem("mlflow", f"the MLflow server at {uri} refused the credentials "
                        f"({answer.status_code})", "set MLFLOW_TRACKING_TOKEN, or "
                        "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")], None
    if answer.status_code != 200:
        return [Problem("mlflow", f"{uri} answered {answer.status_code} to MLflow's REST API: "
                        "is it an MLflow tracking server?", "correct MLFLOW_TRACKING_URI")], None
    return [], f"mlflow: tracking server at {uri} answers"


def _wandb(settings: Any, env: Mapping[str, str], timeout: float
           ) -> tuple[list[Problem], str | None]:
    """Online mode: the API key is accepted by the W&B server."""
    mode = env.get("WANDB_MODE", "online").strip().lower()
    if mode != "online" and mode != "run":
        return [], f"wandb: {mode} mode (`wandb sync` uploads the runs later)"
    import requests

    base = env.get("WANDB_BASE_URL", "https://api.wandb.ai").rstrip("/")
    key = env.get("WANDB_API_KEY", "").strip()
    if not key:
        return [], None  # the ~/.netrc login: W&B's own `wandb login --verify` checks it
    try:
        answer = requests.post(f"{base}/graphql", json={"query": "{ viewer { username } }"},
                               auth=("api", key), timeout=timeout)
    except requests.RequestException as exc:
        return [Problem("wandb", f"cannot reach W&B at {base} ({type(exc).__name__})",
                        "check the network, WANDB_BASE_URL, or WANDB_MODE=offline")], None
    if answer.status_code in (401, 403):
        return [Problem("WANDB_API_KEY", f"W&B at {base} refused the API key",
                        "a key from https://wandb.ai/authorize (or `wandb login`)")], None
    return [], f"wandb: online, API key accepted by {base}"


_REMOTE = {"http": _http, "mlflow": _mlflow, "wandb": _wandb}
