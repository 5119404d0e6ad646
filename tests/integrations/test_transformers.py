"""transformers Trainer: a 2-layer BERT built from a config, trained on synthetic token ids."""

from __future__ import annotations

import inspect
import json
import os
import pickle
import subprocess
import sys
from dataclasses import asdict, dataclass, field

import pytest

import autolog
from autolog.errors import AutologWarning
from autolog.testing import RecordingBackend, registered

from ..helpers import only_run

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from autolog.integrations.transformers import AutologCallback  # noqa: E402

SEQ = 16


def tiny_model(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=37, max_position_embeddings=32,
                        num_labels=2)
    return BertForSequenceClassification(config)


def token_data(n: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (n, SEQ), generator=generator)
    labels = (ids[:, 0] > 50).long()
    mask = torch.ones(SEQ, dtype=torch.long)
    return [{"input_ids": ids[i], "attention_mask": mask, "labels": labels[i]} for i in range(n)]


def training_args(tmp_path, cls=TrainingArguments, **overrides) -> TrainingArguments:
    options = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4,
                   per_device_eval_batch_size=8, num_train_epochs=1, logging_steps=1,
                   learning_rate=1e-3, save_strategy="no", report_to="none", use_cpu=True,
                   disable_tqdm=True, dataloader_pin_memory=False, seed=0)
    options.update(overrides)
    if "eval_strategy" in options and not hasattr(cls, "eval_strategy"):  # < 4.41
        options["evaluation_strategy"] = options.pop("eval_strategy")
    return cls(**options)


def make_trainer(tmp_path, n_train=16, cls=Trainer, **kwargs) -> Trainer:
    kwargs.setdefault("args", training_args(tmp_path))
    kwargs.setdefault("model", tiny_model())
    return cls(train_dataset=token_data(n_train), eval_dataset=token_data(8, seed=1), **kwargs)


def steps(record, key: str) -> list[int]:
    return [step for step, _, _ in record.history(key)]


def test_enable_records_params_metrics_eval_and_model(tmp_path):
    autolog.enable()
    args = training_args(tmp_path, eval_strategy="steps", eval_steps=10)
    trainer = make_trainer(tmp_path, n_train=80, args=args)
    trainer.train()

    record = only_run()
    assert record.status == "FINISHED"
    assert record.name.startswith("BertForSequenceClassification-")
    assert record.tags["transformers.trainer"] == "Trainer"
    model = trainer.model
    total = sum(p.numel() for p in model.parameters())
    assert record.params["learning_rate"] == 1e-3
    assert record.params["per_device_train_batch_size"] == 4
    assert record.params["train_batch_size"] == 4
    assert record.params["model.class"].endswith(".BertForSequenceClassification")
    assert record.params["model.parameters"] == record.params["model.trainable_parameters"] == total
    assert record.params["model.config.hidden_size"] == 32
    assert record.params["model.config.id2label.0"] == "LABEL_0"

    assert steps(record, "loss") == list(range(1, 21))  # one point per optimizer step
    for key in ("learning_rate", "grad_norm"):
        assert steps(record, key) == list(range(1, 21))
    assert steps(record, "epoch") == [*range(1, 11), 10, *range(11, 21), 20, 20]  # + evals, summary
    assert steps(record, "eval_loss") == [10, 20]  # once, though on_log and on_evaluate see it
    history = [h for h in trainer.state.log_history if "eval_loss" in h]
    assert [v for _, v, _ in record.history("eval_loss")] == [h["eval_loss"] for h in history]
    for key in ("train_runtime", "train_samples_per_second", "train_steps_per_second",
                "total_flos", "train_loss"):
        assert steps(record, key) == [20], key

    assert record.models["model"]["flavor"] == "transformers"
    loaded = autolog.load_model(record.id)
    assert type(loaded) is BertForSequenceClassification and not loaded.training
    batch = torch.stack([d["input_ids"] for d in token_data(4, seed=2)])
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=batch).logits, model(input_ids=batch).logits)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_hand_added_callback_and_enable_log_once(tmp_path):
    callbacks = [AutologCallback()]
    trainer = make_trainer(tmp_path, callbacks=callbacks)
    autolog.enable(log_models=False)
    trainer.train()
    assert len(callbacks) == 1  # the user's list is not touched
    assert sum(isinstance(cb, AutologCallback) for cb in trainer.callback_handler.callbacks) == 1
    record = only_run()
    assert steps(record, "loss") == [1, 2, 3, 4]
    assert record.models == {}


def test_training_inside_a_user_run_logs_into_it(tmp_path):
    autolog.enable()
    trainer = make_trainer(tmp_path, args=training_args(tmp_path, max_steps=3))
    with autolog.start_run("mine") as run:
        trainer.train()
        assert autolog.active_run() is run  # left open for the user
        trainer.evaluate()  # after train(): still recorded, into the user's run
    record = only_run()
    assert (record.name, record.status) == ("mine", "FINISHED")
    assert steps(record, "loss") == [1, 2, 3] and steps(record, "eval_loss") == [3]
    assert record.models["model"]["flavor"] == "transformers"


class BrokenConfig(BertConfig):
    def to_dict(self):
        raise RuntimeError("config cannot be serialised")


def test_an_autolog_failure_in_the_callback_never_stops_training(tmp_path, lenient):
    model = tiny_model()
    model.config.__class__ = BrokenConfig
    autolog.enable(log_models=False)
    trainer = make_trainer(tmp_path, model=model, args=training_args(tmp_path, max_steps=2))
    with pytest.warns(AutologWarning, match="on_train_begin failed"):
        trainer.train()
    assert trainer.state.global_step == 2
    record = only_run()
    assert record.status == "FINISHED" and steps(record, "loss") == [1, 2]


@dataclass
class LoraConfig:  # the shape of a peft config: to_dict() of its fields
    r: int = 4
    lora_alpha: int = 8
    target_modules: set[str] = field(default_factory=lambda: {"query", "value"})

    def to_dict(self):
        return asdict(self)


def test_hand_added_callback_without_enable(tmp_path):
    model = tiny_model()
    model.peft_config = {"default": LoraConfig()}
    model.bert.embeddings.requires_grad_(False)
    trainer = make_trainer(tmp_path, n_train=8, model=model,
                           callbacks=[AutologCallback(log_models=False)])
    trainer.train()
    record = only_run()
    assert record.status == "FINISHED" and steps(record, "loss") == [1, 2]
    assert "transformers.trainer" not in record.tags  # only the patched train() knows the trainer
    assert record.params["model.peft.default.r"] == 4
    assert record.params["model.peft.default.target_modules"] == '["query", "value"]'
    frozen = sum(p.numel() for p in model.bert.embeddings.parameters())
    assert record.params["model.trainable_parameters"] == record.params["model.parameters"] - frozen
    assert record.models == {}


class Boom(TrainerCallback):
    def __init__(self, error: BaseException, at_step: int):
        self.error, self.at_step = error, at_step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at_step:
            raise self.error


@pytest.mark.parametrize(("error", "status"), [(ValueError("bad batch"), "FAILED"),
                                               (KeyboardInterrupt(), "KILLED")])
def test_train_raising_reaches_the_user_unchanged(tmp_path, error, status):
    autolog.enable()
    trainer = make_trainer(tmp_path, callbacks=[Boom(error, at_step=2)])
    with pytest.raises(type(error)) as info:
        trainer.train()
    assert info.value is error
    assert info.traceback[-1].name == "on_step_end"  # raised where it was, no wrapper frame
    assert info.value.__context__ is None and info.value.__cause__ is None
    record = only_run()
    assert record.status == status
    assert steps(record, "loss") == [1]
    assert record.models == {}


def test_a_failed_hand_added_run_is_closed_by_the_next_train(tmp_path):
    callback = AutologCallback(log_models=False)
    error = ValueError("bad batch")
    trainer = make_trainer(tmp_path, callbacks=[callback, Boom(error, at_step=1)])
    with pytest.raises(ValueError):
        trainer.train()
    trainer.pop_callback(Boom)
    trainer.train()
    failed, finished = sorted(autolog.list_runs(), key=lambda r: r.start_time)
    assert (failed.status, finished.status) == ("FAILED", "FINISHED")


class WrappingTrainer(Seq2SeqTrainer):  # TRL-style: overrides train and calls super()
    def train(self, *args, **kwargs):
        return super().train(*args, **kwargs)


def test_subclasses_get_the_callback(tmp_path):
    autolog.enable(log_models=False)
    args = training_args(tmp_path, cls=Seq2SeqTrainingArguments, max_steps=3)
    make_trainer(tmp_path, cls=WrappingTrainer, args=args).train()
    record = only_run()
    assert record.tags["transformers.trainer"] == "WrappingTrainer"
    assert steps(record, "loss") == [1, 2, 3]


def test_saving_the_model_draws_no_progress_bar_and_leaves_the_bars_on(tmp_path, capfd):
    """autolog's ``save_pretrained`` is not the user's output: no "Writing model shards" bar
    (transformers 5 draws one) on their terminal or in the run's console."""
    from transformers.utils import logging as hf_logging

    autolog.enable()
    args = training_args(tmp_path, disable_tqdm=True)
    make_trainer(tmp_path, args=args).train()
    out, err = capfd.readouterr()
    assert "model shards" not in out + err
    assert only_run().models["model"]["flavor"] == "transformers"
    assert hf_logging.is_progress_bar_enabled()  # as the user had them
    hf_logging.disable_progress_bar()
    try:
        make_trainer(tmp_path, args=args).train()
        assert not hf_logging.is_progress_bar_enabled()  # and off stays off
    finally:
        hf_logging.enable_progress_bar()


def test_checkpoints_and_best_model(tmp_path):
    autolog.enable(log_models=False)
    args = training_args(tmp_path, max_steps=6, eval_strategy="steps", eval_steps=3,
                         save_strategy="steps", save_steps=3, load_best_model_at_end=True,
                         metric_for_best_model="loss", greater_is_better=False)
    trainer = make_trainer(tmp_path, n_train=24, args=args)
    trainer.train()
    record = only_run()
    out = tmp_path / "out"
    saved = json.loads(record.artifact_path("checkpoints.json").read_text())
    assert saved == [{"step": 3, "path": str(out / "checkpoint-3")},
                     {"step": 6, "path": str(out / "checkpoint-6")}]
    assert record.tags["checkpoint.last"] == str(out / "checkpoint-6")
    assert record.tags["checkpoint.best"] == trainer.state.best_model_checkpoint
    assert record.tags["checkpoint.best_metric"] == "eval_loss"
    evals = record.history("eval_loss")
    best_step, best, _ = min(evals, key=lambda point: point[1])
    assert record.history("best_eval_loss")[0][:2] == (best_step, best)
    assert record.models == {}  # enable(log_models=False)


def test_tokenizer_saved_with_the_model_and_tokens_counted(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, **{f"w{i}": i for i in range(2, 100)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]",
                                        unk_token="[UNK]")
    autolog.enable()
    args = training_args(tmp_path, max_steps=2, include_num_input_tokens_seen=True)
    named = "processing_class" if "processing_class" in inspect.signature(Trainer).parameters \
        else "tokenizer"  # transformers < 4.46
    make_trainer(tmp_path, args=args, **{named: tokenizer}).train()
    record = only_run()
    assert [v for _, v, _ in record.history("num_input_tokens_seen")][:2] == [4 * SEQ, 8 * SEQ]
    spec = record.models["model"]
    assert spec["processing_class"].rpartition(".")[2] == type(tokenizer).__qualname__
    folder = record.artifact_path("model")
    reloaded = PreTrainedTokenizerFast.from_pretrained(folder)
    assert reloaded("w5 w7 zz")["input_ids"] == tokenizer("w5 w7 zz")["input_ids"] == [5, 7, 1]
    assert type(autolog.load_model(record.id)) is BertForSequenceClassification


def test_hyperparameter_search_logs_a_child_run_per_trial(tmp_path):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    autolog.enable()
    trainer = make_trainer(tmp_path, model=None, model_init=lambda: tiny_model(),
                           args=training_args(tmp_path, max_steps=2))

    def space(trial):
        return {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)}

    best = trainer.hyperparameter_search(hp_space=space, n_trials=2, direction="minimize",
                                         backend="optuna")
    runs = autolog.list_runs()
    (parent,) = [r for r in runs if r.parent_id is None]
    children = sorted((r for r in runs if r.parent_id == parent.id), key=lambda r: r.name)
    assert len(runs) == 3 and [c.name for c in children] == ["trial-0", "trial-1"]
    assert parent.status == "FINISHED" and parent.params["hp_search.n_trials"] == 2
    assert parent.name.startswith("BertForSequenceClassification-search-")
    assert parent.params["hp_search.backend"] == "optuna"
    assert parent.params["best_trial"] == best.run_id
    assert parent.metrics["best_objective"] == best.objective
    assert parent.models == {}
    for child in children:
        assert child.status == "FINISHED" and child.models == {}
        assert child.params["trial.learning_rate"] == child.params["learning_rate"]
        assert steps(child, "loss") == [1, 2]
        assert steps(child, "eval_loss") == [2]  # the search's evaluate() after train()
    objectives = sorted(c.metrics["eval_loss"] for c in children)
    assert best.objective == objectives[0]


def test_only_the_world_process_zero_logs(tmp_path):
    class RankOne(Trainer):
        def is_world_process_zero(self):
            return False

    autolog.enable()
    make_trainer(tmp_path, cls=RankOne).train()
    assert autolog.list_runs() == []


def test_double_logging_with_report_to_warns_once(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from transformers.integrations import WandbCallback

    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))

    class FakeWandb(RecordingBackend):
        name = "wandb"

    with registered(FakeWandb):
        autolog.enable(backend="local,wandb", log_models=False)
        trainer = make_trainer(tmp_path, args=training_args(tmp_path, report_to="wandb",
                                                            max_steps=1))
        assert any(isinstance(cb, WandbCallback) for cb in trainer.callback_handler.callbacks)
        trainer.remove_callback(WandbCallback)  # its own logging is not what is tested here
        with pytest.warns(AutologWarning, match="reaches wandb twice") as caught:
            trainer.train()
        trainer.train()  # once per process
    assert len([w for w in caught if "twice" in str(w.message)]) == 1
    assert len(autolog.list_runs()) == 2


def test_disable_restores_trainer_and_leaves_injected_callbacks_inert(tmp_path):
    original = Trainer.__dict__["train"], Trainer.__dict__["hyperparameter_search"]
    autolog.enable(log_models=False)
    assert Trainer.__dict__["train"] is not original[0]
    trainer = make_trainer(tmp_path, n_train=4)
    trainer.train()
    autolog.disable()
    assert (Trainer.__dict__["train"], Trainer.__dict__["hyperparameter_search"]) == original
    trainer.train()  # its injected callback stays, doing nothing
    assert len(autolog.list_runs()) == 1
    (callback,) = [cb for cb in trainer.callback_handler.callbacks
                   if isinstance(cb, AutologCallback)]
    copy = pickle.loads(pickle.dumps(callback))  # Ray Tune pickles trainers with their callbacks
    assert type(copy) is AutologCallback and copy._trainer is None


IMPORT_ORDER = """
import sys, autolog, autolog.integrations.transformers
autolog.enable()
assert "transformers" not in sys.modules and "torch" not in sys.modules
import transformers
assert "transformers.trainer" not in sys.modules  # enable() does not import the Trainer
from transformers import Trainer
from autolog.patching import patcher
assert patcher().is_patched(Trainer, "train")  # patched on import
"""


def test_enable_before_import_patches_the_trainer_when_it_is_imported(tmp_path):
    env = {**os.environ, "AUTOLOG_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", IMPORT_ORDER], check=True, env=env)


_TRANSFORMER = '''
import torch
from transformers import BertConfig, BertForSequenceClassification


class MyClassifier(BertForSequenceClassification):
    pass
'''

_TRANSFORMER_TRAIN = '''
config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=8, max_position_embeddings=16, num_labels=2)
with autolog.start_run() as run:
    run.log_model(MyClassifier(config))
'''


def test_a_model_class_of_the_training_script_is_the_load_error(tmp_path, store, monkeypatch):
    """Item 16, transformers: a model class from the training script was loaded as
    ``AutoModel`` (another model: no head) or failed with an unrelated error."""
    from ..helpers import class_in_main, trained_in_a_script

    run_id = trained_in_a_script(tmp_path, store, _TRANSFORMER, _TRANSFORMER_TRAIN)
    with pytest.raises(autolog.ModelLoadError,
                       match=r"__main__\.MyClassifier is not importable here") as caught:
        autolog.load_model(run_id)
    assert "from_pretrained" in str(caught.value)
    class_in_main(monkeypatch, tmp_path, "MyClassifier")
    assert type(autolog.load_model(run_id)).__name__ == "MyClassifier"


HAS_GRADIENT_EVENT = hasattr(transformers.TrainerCallback, "on_pre_optimizer_step")


@pytest.mark.skipif(not HAS_GRADIENT_EVENT, reason="transformers < 4.42: no gradient event")
def test_weight_and_gradient_histograms_and_dataset_fingerprints(tmp_path):
    autolog.enable(log_histograms=1)
    trainer = make_trainer(tmp_path, args=training_args(tmp_path, num_train_epochs=2))
    trainer.train()
    record = only_run()
    name = "bert.encoder.layer.0.attention.self.query.weight"
    weights = record.media_for(f"weights/{name}", "histogram")
    grads = record.media_for(f"gradients/{name}", "histogram")
    assert [m.step for m in weights] == [0, 1] and weights[0].meta["count"] == 32 * 32
    assert [m.step for m in grads] == [0, 1] and grads[0].meta["nan"] == 0
    assert len({m.key for m in record.media if m.key.startswith("weights/")}) == \
        min(200, len(list(trainer.model.named_parameters())))
    assert (record.tags["dataset.training.rows"], record.tags["dataset.evaluation.rows"]) == \
        ("16", "8")


@pytest.mark.skipif(HAS_GRADIENT_EVENT, reason="transformers >= 4.42 has the gradient event")
def test_before_4_42_weight_histograms_only_and_one_warning(tmp_path):
    autolog.enable(log_histograms=1)
    trainer = make_trainer(tmp_path, args=training_args(tmp_path, num_train_epochs=2))
    with pytest.warns(autolog.AutologWarning, match="gradient histograms need transformers"):
        trainer.train()
    record = only_run()
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert [m.step for m in record.media_for(f"weights/{name}", "histogram")] == [0, 1]
    assert not [m for m in record.media if m.key.startswith("gradients/")]
