"""Configuration: one table of variables, clear errors naming the variable and accepted values."""

from __future__ import annotations

import pytest

import autolog
from autolog.config import VARIABLES, Settings, markdown_table
from autolog.errors import ConfigError

from .helpers import only_run

ROOT_DOCS = __import__("pathlib").Path(__file__).resolve().parents[1] / "docs"


def test_defaults():
    s = Settings.load({})
    assert (s.backend, s.dir, s.project, s.disable, s.log_models, s.system_metrics,
            s.system_interval, s.strict, s.flush_interval) == (
        ("local",), "./autolog-runs", "default", False, True, True, 10.0, False, 1.0)


def test_environment_parsing():
    s = Settings.load({"AUTOLOG_BACKEND": " Local , MLflow,local", "AUTOLOG_LOG_MODELS": "off",
                       "AUTOLOG_SYSTEM_INTERVAL": "2.5", "AUTOLOG_DISABLE": "yes"})
    assert s.backend == ("local", "mlflow") and s.log_models is False
    assert s.system_interval == 2.5 and s.disable is True


@pytest.mark.parametrize(("env", "message"), [
    ({"AUTOLOG_SYSTEM_INTERVAL": "fast"}, "AUTOLOG_SYSTEM_INTERVAL='fast' is not a number"),
    ({"AUTOLOG_SYSTEM_INTERVAL": "-1"}, "AUTOLOG_SYSTEM_INTERVAL='-1' must be a positive"),
    ({"AUTOLOG_LOG_MODELS": "maybe"}, "AUTOLOG_LOG_MODELS='maybe' is not a boolean; use one of"),
    ({"AUTOLOG_BACKEND": "ml flow"}, "AUTOLOG_BACKEND: 'ml flow' is not a valid name"),
    ({"AUTOLOG_MAX_CHILD_RUNS": "many"}, "AUTOLOG_MAX_CHILD_RUNS='many' is not a whole number"),
])
def test_invalid_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Settings.load(env)


def test_enable_arguments_override_the_environment(monkeypatch):
    monkeypatch.setenv("AUTOLOG_PROJECT", "from-env")
    monkeypatch.setenv("AUTOLOG_LOG_MODELS", "1")
    autolog.enable(project="from-arg", log_models=False, system_metrics=False)
    settings = autolog.api.get_settings()
    assert settings.project == "from-arg" and settings.log_models is False
    autolog.log_metric("x", 1.0)
    autolog.end_run()
    assert only_run().project == "from-arg"


def test_run_name_names_the_next_run_only(monkeypatch):
    monkeypatch.setenv("AUTOLOG_RUN_NAME", "baseline")
    with autolog.start_run():
        pass
    with autolog.start_run():
        pass
    names = [r.name for r in autolog.list_runs()]
    assert names.count("baseline") == 1 and len(set(names)) == 2


def test_unknown_framework_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"enable\(frameworks=...\): unknown framework\(s\) nope"):
        autolog.enable(frameworks=["nope"])


def test_configuration_doc_lists_every_variable():
    text = (ROOT_DOCS / "configuration.md").read_text()
    assert markdown_table() in text, "regenerate with: python -m autolog.config"
    for var in VARIABLES:
        assert var.env in text
