"""Configuration mistakes that can be seen without the network, each with its fix.

``autolog doctor`` reports them (then makes the network checks of :mod:`autolog.doctor`);
``autolog.enable()`` warns once about each at start, so a typo such as ``AUTOLOG_BAKEND=mlflow``
or a tracker SDK that is not installed is said at once instead of being silently ignored. All
cheap: environment variables, installed package metadata, a look at the store's directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import INTERNAL_VARIABLES, VARIABLES, Settings, nearest
from .errors import ConfigError
from .plugins import get_plugins, installed_version

__all__ = ["Problem", "backend_problems", "plugin_variables", "settings_of", "static_problems",
           "unknown_variables"]

#: backends whose SDK comes with an extra of the same name
_EXTRA_OF = {"mlflow": "mlflow", "wandb": "wandb", "tensorboard": "tensorboard", "aim": "aim",
             "comet": "comet", "clearml": "clearml"}
WANDB_MODES = ("online", "offline", "disabled", "dryrun", "run", "shared")
MLFLOW_SCHEMES = ("http", "https", "file", "sqlite", "postgresql", "mysql", "mssql",
                  "databricks", "databricks-uc", "uc")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.-]+:\d+(/.*)?$")


class Problem:
    """Something misconfigured: where (a variable, a backend, the store), what, and the fix.
    (A plain class, not a dataclass: ``enable()`` imports this module, and making a dataclass
    costs a millisecond.)"""

    __slots__ = ("check", "fix", "message")

    def __init__(self, check: str, message: str, fix: str):
        self.check = check
        self.message = message
        self.fix = fix

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "message": self.message, "fix": self.fix}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Problem):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash((self.check, self.message, self.fix))

    def __repr__(self) -> str:
        return f"Problem(check={self.check!r}, message={self.message!r}, fix={self.fix!r})"

    def __str__(self) -> str:
        return f"{self.check}: {self.message}; fix: {self.fix}"


def static_problems(environ: Mapping[str, str] | None = None) -> list[Problem]:
    """Every mistake this module can see, in the order a person would fix them."""
    env = os.environ if environ is None else environ
    settings, invalid = settings_of(env)
    return [*unknown_variables(env, plugin_variables(settings)), *invalid,
            *backend_problems(settings, env), *store_problems(settings)]


def plugin_variables(settings: Settings) -> set[str]:
    """The ``AUTOLOG_*`` variables the configured backends declare as their own."""
    classes = get_plugins(settings).backends([n for n in settings.backend if n != "local"])
    return {var for name in settings.backend if name in classes
            for var in getattr(classes[name], "variables", ())}


def unknown_variables(env: Mapping[str, str], declared: set[str] | None = None) -> list[Problem]:
    """``AUTOLOG_*`` variables autolog does not read (a typo: said with the nearest name);
    ``declared``: those the configured plugins read."""
    known = {v.env for v in VARIABLES} | set(INTERNAL_VARIABLES) | (declared or set())
    problems = []
    for name in sorted(env):
        if not name.startswith("AUTOLOG_") or name in known or name.startswith("AUTOLOG_TEST_"):
            continue
        guess = nearest(name, sorted(v.env for v in VARIABLES))
        fix = f"rename it {guess}" if guess else "unset it (docs/configuration.md lists them)"
        problems.append(Problem(name, "not a variable autolog reads: it is ignored"
                                + (f" (did you mean {guess}?)" if guess else ""), fix))
    return problems


def settings_of(env: Mapping[str, str]) -> tuple[Settings, list[Problem]]:
    """The settings ``env`` gives, with each invalid value replaced by its default, and a
    problem for each of those."""
    values: dict[str, Any] = {}
    problems = []
    for var in VARIABLES:
        try:
            values[var.attr] = var.parse(var.env, env.get(var.env))
        except ConfigError as exc:
            values[var.attr] = var.default
            problems.append(Problem(var.env, str(exc), f"set a valid value or unset {var.env}"))
    return Settings(values), problems


def backend_problems(settings: Settings, env: Mapping[str, str]) -> list[Problem]:
    """Unknown backend names, SDKs not installed, a backend's own settings that cannot work."""
    # only the configured built-ins are loaded (enable() calls this: local alone loads none)
    classes = get_plugins(settings).backends([n for n in settings.backend if n != "local"])
    problems = []
    for name in settings.backend:
        if name == "local":
            continue
        cls = classes.get(name)
        if cls is None:
            guess = nearest(name, ["local", *classes])
            problems.append(Problem(
                "AUTOLOG_BACKEND", f"unknown backend {name!r}" +
                (f" (did you mean {guess!r}?)" if guess else ""),
                f"use {guess!r}" if guess else "one of: " + ", ".join(["local", *sorted(classes)])))
            continue
        missing = sdk_missing(name, cls)
        if missing:
            problems.append(missing)
        problems += _BACKEND_CHECKS.get(cls.__module__, _nothing)(settings, env)
    return problems


def sdk_missing(name: str, cls: Any) -> Problem | None:
    dists = tuple(getattr(cls, "distributions", ()) or ())
    if not dists or installed_version(dists) is not None:
        return None
    extra = _EXTRA_OF.get(name)
    line = f"pip install 'autolog-ml[{extra}]'" if extra else f"pip install {dists[0]}"
    return Problem(name, f"the {name} backend is configured but {dists[0]} is not installed "
                   "(runs stay in the local store until it is)", line)


def _nothing(settings: Settings, env: Mapping[str, str]) -> list[Problem]:
    return []


def _http(settings: Settings, env: Mapping[str, str]) -> list[Problem]:
    url = settings.http_url
    if not url:
        return [Problem("http", "AUTOLOG_HTTP_URL is not set: the http backend does not know "
                        "where the server is", "AUTOLOG_HTTP_URL=http://HOST:5005")]
    if not url.startswith(("http://", "https://")):
        return [Problem("AUTOLOG_HTTP_URL", f"{url!r} is not an http(s) URL",
                        f"AUTOLOG_HTTP_URL=http://{url}")]
    return []


def _mlflow(settings: Settings, env: Mapping[str, str]) -> list[Problem]:
    uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        return []  # MLflow's own default: a store in the working directory (doctor notes it)
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if _HOST_PORT.match(uri):
        return [Problem("MLFLOW_TRACKING_URI", f"{uri!r} has no scheme: MLflow would read it "
                        "as a local path", f"MLFLOW_TRACKING_URI=http://{uri}")]
    base = scheme.split("+", 1)[0]
    if scheme and base not in MLFLOW_SCHEMES and len(scheme) > 1:  # C:\... is a path
        return [Problem("MLFLOW_TRACKING_URI", f"{uri!r}: MLflow has no {scheme!r} store",
                        "an http(s)://, sqlite:///, file:/// or database URI")]
    if base in ("file", "sqlite") or not scheme or len(scheme) == 1:
        return _local_uri(uri, base)
    return []


def _local_uri(uri: str, base: str) -> list[Problem]:
    """A file or SQLite store: its directory must exist or be creatable, and be writable."""
    if base == "sqlite":
        path = uri.split(":///", 1)[1] if ":///" in uri else ""
        if not path or path == ":memory:":
            return [Problem("MLFLOW_TRACKING_URI", f"{uri!r} is not a file the runs can stay "
                            "in", "MLFLOW_TRACKING_URI=sqlite:///mlflow.db")]
        target = Path(path).expanduser().absolute().parent
    else:
        path = uri[len("file://"):] if uri.startswith("file://") else uri
        target = Path(path).expanduser().absolute()
    problem = unwritable(target)
    return [Problem("MLFLOW_TRACKING_URI", f"{uri!r}: {problem}", "point it at a directory "
                    "you can write")] if problem else []


def _wandb(settings: Settings, env: Mapping[str, str]) -> list[Problem]:
    mode = env.get("WANDB_MODE", "").strip().lower()
    if mode and mode not in WANDB_MODES:
        guess = nearest(mode, list(WANDB_MODES))
        return [Problem("WANDB_MODE", f"{mode!r} is not a W&B mode", f"WANDB_MODE={guess}"
                        if guess else "WANDB_MODE=online or offline")]
    if mode == "disabled":
        return [Problem("WANDB_MODE", "WANDB_MODE=disabled while the wandb backend is "
                        "configured: W&B records nothing", "WANDB_MODE=offline (then `wandb "
                        "sync`) or online, or take wandb out of AUTOLOG_BACKEND")]
    if mode in ("offline", "dryrun") or env.get("WANDB_API_KEY", "").strip():
        return []
    if not _netrc_has(env.get("WANDB_BASE_URL", "https://api.wandb.ai")):
        return [Problem("wandb", "online mode but no API key (WANDB_API_KEY, or `wandb login`'s "
                        "~/.netrc entry)", "wandb login, or WANDB_API_KEY=..., or "
                        "WANDB_MODE=offline")]
    return []


def _netrc_has(url: str) -> bool:
    import netrc

    host = re.sub(r"^https?://", "", url).split("/")[0].split(":")[0]
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


#: the built-in backends' own checks (by module: a plugin may reuse a name)
_BACKEND_CHECKS = {"autolog.backends.http": _http, "autolog.backends.mlflow": _mlflow,
                   "autolog.backends.wandb": _wandb}


def store_problems(settings: Settings) -> list[Problem]:
    """The local store (every run's journal) must be writable, or creatable."""
    root = Path(settings.dir).expanduser().absolute()
    problem = unwritable(root)
    if problem is None:
        return []
    return [Problem("AUTOLOG_DIR", f"the local store {root}: {problem}; runs would not be "
                    "recorded", "AUTOLOG_DIR=a directory you can write")]


def unwritable(directory: Path) -> str | None:
    """Why files cannot be written in ``directory`` (or created in its nearest existing
    ancestor), or None when they can."""
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            return "no existing directory above it"
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable by this user"
    return None
