"""Safe patching, tested on a small fake framework before any real integration uses it."""

from __future__ import annotations

import importlib
import inspect
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


class _OnlyWhenReady:
    """A descriptor like scikit-learn's ``available_if``: the method exists only on instances
    that are ready (``hasattr`` is False otherwise)."""

    def __init__(self, function):
        self.function = function
        self.__name__ = function.__name__
        self.__doc__ = function.__doc__

    def __get__(self, instance, owner=None):
        if instance is not None and not instance.ready:
            raise AttributeError(f"{self.__name__} needs a ready instance")
        return self.function if instance is None else self.function.__get__(instance, owner)


class Shapes:
    ready = True

    def method(self, a, b=2):
        """a method."""
        return ("method", self, a, b)

    @classmethod
    def build(cls, a):
        return ("build", cls, a)

    @staticmethod
    def helper(a):
        return ("helper", a)

    @_OnlyWhenReady
    def guarded(self, a):
        return ("guarded", self, a)


def _module_function(a, *, b=0):
    """a module's function."""
    return ("function", a, b)


def test_each_kind_of_attribute_is_wrapped_as_wrapt_would_and_reverted_exactly():
    from types import SimpleNamespace

    from autolog.patching import Patcher

    seen = []

    def wrapper(wrapped, instance, args, kwargs):
        seen.append((instance, args, kwargs))
        return wrapped(*args, **kwargs)

    module = SimpleNamespace(function=_module_function)
    before = dict(vars(Shapes))
    patcher = Patcher()
    for name in ("method", "build", "helper", "guarded"):
        assert patcher.wrap(Shapes, name, wrapper)
        assert patcher.is_patched(Shapes, name) and not patcher.wrap(Shapes, name, wrapper)
    assert patcher.wrap(module, "function", wrapper)
    shape = Shapes()

    assert shape.method(1) == ("method", shape, 1, 2) and seen.pop() == (shape, (1,), {})
    assert Shapes.method(shape, 1, b=3) == ("method", shape, 1, 3)  # through the class
    assert seen.pop() == (shape, (1,), {"b": 3})
    assert Shapes.build(4) == ("build", Shapes, 4) and seen.pop() == (Shapes, (4,), {})
    assert shape.build(4) == ("build", Shapes, 4) and seen.pop() == (Shapes, (4,), {})
    assert shape.helper(5) == ("helper", 5) and seen.pop() == (None, (5,), {})
    assert shape.guarded(6) == ("guarded", shape, 6) and seen.pop() == (shape, (6,), {})
    assert Shapes.guarded(shape, 7) == ("guarded", shape, 7) and seen.pop() == (shape, (7,), {})
    shape.ready = False
    assert not hasattr(shape, "guarded")  # the descriptor is still asked
    assert module.function(8, b=1) == ("function", 8, 1) and seen.pop() == (None, (8,),
                                                                             {"b": 1})
    # names, docstrings and signatures are the originals'
    assert Shapes.method.__name__ == "method" and Shapes.method.__doc__ == "a method."
    assert str(inspect.signature(Shapes.method)) == "(self, a, b=2)"
    assert str(inspect.signature(module.function)) == "(a, *, b=0)"

    patcher.revert()
    assert dict(vars(Shapes)) == before and module.function is _module_function
    assert not patcher.is_patched(Shapes, "method")


def test_a_function_copied_from_a_patch_is_not_taken_for_one():
    import functools

    from autolog.patching import Patcher

    class Owner:
        def fit(self):
            return "fit"

    patcher = Patcher()
    patcher.wrap(Owner, "fit", lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs))

    class Decorated(Owner):
        fit = functools.wraps(Owner.fit)(lambda self: "decorated")  # copies the patch's __dict__

    assert patcher.is_patched(Owner, "fit") and not patcher.is_patched(Decorated, "fit")
    assert patcher.wrap(Decorated, "fit", lambda w, i, a, k: w(*a, **k))
    assert Decorated().fit() == "decorated"
    patcher.revert()
