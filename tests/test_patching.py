"""Safe patching, tested on a small fake framework before any real integration uses it."""

from __future__ import annotations

import importlib
import pickle
import sys
import textwrap
import traceback
import uuid

import pytest

import autolog
from autolog import AutologWarning
from autolog.hookspecs import hookimpl
from autolog.integrations.base import Integration, RunScope
from autolog.patching import TrainingCall, in_training
from autolog.plugins import get_plugins

FAKE_FRAMEWORK = '''
class Model:
    def __init__(self, fail=None):
        self.fail = fail
        self.fits = 0

    def fit(self, data, epochs=1):
        self.fits += 1
        if self.fail is not None:
            raise self.fail
        return self

    def score(self):
        return 1.0


class Pipeline(Model):
    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def fit(self, data, epochs=1):
        for step in self.steps:
            step.fit(data, epochs)
        return self


class Child(Model):
    """Inherits fit: patching Model covers it."""
'''


class FitCall(TrainingCall):
    place = "fakefw fit"
    explode = False

    def before(self):
        if FitCall.explode:
            raise RuntimeError("autolog bug")
        self.scope = RunScope(type(self.instance).__name__)
        self.scope.run.log_params({"epochs": self.kwargs.get("epochs", 1), "inside": in_training()})
        return None

    def after(self, result):
        self.scope.run.log_metric("score", result.score())
        self.scope.close()

    def failed(self, exc):
        self.scope.close(exc)


@pytest.fixture
def fakefw(tmp_path, monkeypatch):
    """A fresh, not yet imported framework module, and an integration for it."""
    name = f"fakefw_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(FAKE_FRAMEWORK))
    monkeypatch.syspath_prepend(str(tmp_path))

    class FakeIntegration(Integration):
        modules = (name,)

        def patch(self, patcher, module):
            patcher.training(module.Model, "fit", FitCall)
            patcher.training(module.Pipeline, "fit", FitCall)

    FakeIntegration.name = name

    class Plugin:
        @hookimpl
        def autolog_register_integrations(self, register):
            register(FakeIntegration())

    plugin = Plugin()
    get_plugins(autolog.api.get_settings()).register(plugin)
    FitCall.explode = False
    yield name
    sys.modules.pop(name, None)


def test_enable_before_import(fakefw):
    autolog.enable()
    assert fakefw not in sys.modules
    module = importlib.import_module(fakefw)
    module.Model().fit([1, 2], epochs=3)
    (run,) = autolog.list_runs()
    assert run.name == "Model" and run.params == {"epochs": 3, "inside": True}
    assert run.metrics == {"score": 1.0} and run.status == "FINISHED"


def test_enable_after_import_and_inherited_methods(fakefw):
    module = importlib.import_module(fakefw)
    autolog.enable()
    module.Child().fit([1])
    (run,) = autolog.list_runs()
    assert run.name == "Child"


def test_nested_training_calls_log_once_at_the_outermost(fakefw):
    module = importlib.import_module(fakefw)
    autolog.enable()
    steps = [module.Model(), module.Model()]
    module.Pipeline(steps).fit([1])
    assert [r.name for r in autolog.list_runs()] == ["Pipeline"]
    assert [s.fits for s in steps] == [1, 1]


def test_the_frameworks_exception_propagates_unchanged(fakefw):
    module = importlib.import_module(fakefw)
    error = ValueError("bad data")
    plain = module.Model(fail=error)
    with pytest.raises(ValueError) as without:
        plain.fit([1])
    inner_frame_without = traceback.extract_tb(without.value.__traceback__)[-1]
    error.__traceback__ = None

    autolog.enable()
    model = module.Model(fail=error)
    with pytest.raises(ValueError) as caught:
        model.fit([1])
    assert caught.value is error
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    inner = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert (inner.name, inner.line) == (inner_frame_without.name, inner_frame_without.line)
    assert model.fits == 1
    (run,) = autolog.list_runs()
    assert run.status == "FAILED"


def test_keyboard_interrupt_marks_the_run_killed(fakefw):
    module = importlib.import_module(fakefw)
    autolog.enable()
    with pytest.raises(KeyboardInterrupt):
        module.Model(fail=KeyboardInterrupt()).fit([1])
    assert autolog.list_runs()[0].status == "KILLED"


def test_autologs_own_error_is_warned_once_and_the_call_runs_once(fakefw, lenient):
    module = importlib.import_module(fakefw)
    autolog.enable()
    FitCall.explode = True
    model = module.Model()
    with pytest.warns(AutologWarning, match="fakefw fit failed and was skipped: RuntimeError"):
        assert model.fit([1]) is model
    model.fit([1])  # the same place does not warn twice (warnings are errors in this suite)
    assert model.fits == 2


def test_strict_mode_raises_autologs_own_errors(fakefw):
    module = importlib.import_module(fakefw)
    autolog.enable()
    FitCall.explode = True
    with pytest.raises(RuntimeError, match="autolog bug"):
        module.Model().fit([1])


def test_disable_restores_exactly_and_enable_is_idempotent(fakefw):
    module = importlib.import_module(fakefw)
    original = {cls: dict(vars(cls)) for cls in (module.Model, module.Pipeline, module.Child)}
    autolog.enable(frameworks=[fakefw])
    autolog.enable(frameworks=[fakefw])
    assert len(autolog._runtime.runtime.patcher) == 2
    module.Model().fit([1])
    assert len(autolog.list_runs()) == 1
    autolog.disable()
    for cls, before in original.items():
        assert dict(vars(cls)) == before
        assert vars(cls).get("fit") is before.get("fit")
    module.Model().fit([1])
    assert len(autolog.list_runs()) == 1


def test_patched_objects_still_pickle(fakefw):
    module = importlib.import_module(fakefw)
    autolog.enable()
    model = module.Model().fit([1])
    clone = pickle.loads(pickle.dumps(model))
    assert type(clone) is module.Model and clone.fits == 1
    assert pickle.loads(pickle.dumps(module.Model)) is module.Model


def test_user_run_is_used_and_left_open(fakefw):
    module = importlib.import_module(fakefw)
    autolog.enable()
    with autolog.start_run("mine") as run:
        module.Model().fit([1])
        module.Model().fit([1])
        assert autolog.active_run() is run
    (record,) = autolog.list_runs()
    assert record.id == run.id and record.status == "FINISHED"
    assert [v for _, v, _ in record.history("score")] == [1.0, 1.0]


def test_disable_env_makes_everything_a_no_op(fakefw, monkeypatch):
    monkeypatch.setenv("AUTOLOG_DISABLE", "1")
    module = importlib.import_module(fakefw)
    autolog.enable()
    module.Model().fit([1])
    with autolog.start_run() as run:
        run.log_metric("x", 1.0)
    assert autolog.list_runs() == []
