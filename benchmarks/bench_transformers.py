"""transformers Trainer: the same tiny training without autolog, with it, and with the Trainer's
own MLflowCallback (``report_to="mlflow"`` on a sqlite store), side by side.

Budget: autolog under 2 % slower than without it, with a metric logged every step
(``logging_steps=1``). Each mode trains the same 2-layer BERT (built from a config, no download)
on synthetic token ids; modes alternate within each repeat so machine load hits them alike, and
the median of ``trainer.train()`` wall time is compared. A second table times one ``on_log``
call of each callback (autolog's and MLflow's) with the Trainer's log dict: the cost per step,
free of the run-to-run noise of whole trainings.

    python benchmarks/bench_transformers.py              # 200 steps x 9 repeats
    python benchmarks/bench_transformers.py --quick      # 40 steps x 3 repeats
    python benchmarks/bench_transformers.py --repeats 15
    python benchmarks/bench_transformers.py --every 50   # logging_steps=50 instead of 1
    python benchmarks/bench_transformers.py --no-hook-clock  # no timer around autolog's hooks
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from _common import HookClock, arguments, hook_clock_option, report_hooks, table

from autolog.integrations.transformers import _Recorder, _TrainCall

SEQ = 32
EVERY = 1  # TrainingArguments(logging_steps=...): --every
# transformers imports comet_ml where it is installed, and comet_ml then mirrors every MLflow run
# to Comet (offline: ./.cometml-runs), which the MLflow figure would pay for
os.environ.setdefault("COMET_DISABLE_AUTO_LOGGING", "1")
# around autolog's hooks (the integration module imports no transformers)
CLOCK = HookClock({_Recorder: ["on_log"]},
                  {_Recorder: ["on_train_begin", "on_epoch_begin", "on_epoch_end", "on_evaluate",
                               "on_save", "on_train_end"],
                   _TrainCall: ["before", "after"]})


def tiny_model():
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=SEQ, num_labels=2))


def token_data(n: int, seed: int) -> list[dict]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (n, SEQ), generator=generator)
    labels = (ids[:, 0] > 50).long()
    mask = torch.ones(SEQ, dtype=torch.long)
    return [{"input_ids": ids[i], "attention_mask": mask, "labels": labels[i]} for i in range(n)]


def train_once(mode: str, steps: int, work: Path, data: tuple[list, list],
               hooks: list | None = None) -> float:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    import autolog

    if mode.startswith("autolog"):
        autolog.enable(log_models=mode == "autolog")
    else:
        autolog.disable()
    args = TrainingArguments(
        output_dir=str(work / "out"), per_device_train_batch_size=8, max_steps=steps,
        logging_steps=EVERY, eval_strategy="steps", eval_steps=max(steps // 4, 1),
        save_strategy="no", report_to="mlflow" if mode == "mlflow" else "none", use_cpu=True,
        disable_tqdm=True, dataloader_pin_memory=False, seed=0)
    callbacks = [TrainerCallback()] if mode == "empty" else None  # the floor for any callback
    trainer = Trainer(model=tiny_model(), args=args, train_dataset=data[0], eval_dataset=data[1],
                      callbacks=callbacks)
    CLOCK.take()
    start = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - start
    if hooks is not None:
        hooks.append(CLOCK.take())
    if mode == "mlflow":
        import mlflow

        mlflow.end_run()  # the callback leaves its run open for a later evaluate()
    return elapsed


def main() -> None:
    parser = arguments(__doc__, "40 steps x 3 repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="logging_steps (default 1: a log every step)")
    hook_clock_option(parser)
    opts = parser.parse_args()
    if opts.no_hook_clock:
        CLOCK.unwrap()
    global EVERY
    EVERY = opts.every
    steps, repeats = (40, 3) if opts.quick else (200, 9)
    repeats = opts.repeats or repeats
    import torch

    torch.set_num_threads(opts.threads)  # fewer threads: less noise from other processes

    work = Path(tempfile.mkdtemp(prefix="bench-transformers-"))
    os.environ["AUTOLOG_DIR"] = str(work / "autolog-runs")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    os.environ["MLFLOW_EXPERIMENT_NAME"] = "bench-transformers"
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import contextlib
    import io

    has_mlflow = _installed("mlflow")
    modes = ["plain", "empty", "autolog", "autolog-nomodel"] + (["mlflow"] if has_mlflow else [])
    data = (token_data(8 * steps, 0), token_data(32, 1))
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    taken: dict[str, list] = {mode: [] for mode in modes}  # CLOCK.take() of autolog's fits
    with contextlib.redirect_stdout(io.StringIO()):  # the Trainer prints every log line
        for mode in modes:  # warm-up: first imports, mlflow's database migrations
            train_once(mode, 4, work, data)
        for repeat in range(repeats):
            order = modes[repeat % len(modes):] + modes[:repeat % len(modes)]
            for mode in order:
                hooks = taken[mode] if mode.startswith("autolog") else None
                times[mode].append(train_once(mode, steps, work, data, hooks))

    base = statistics.median(times["plain"])
    labels = {"plain": "no autolog (report_to='none')",
              "empty": "an empty TrainerCallback (no tracking)",
              "autolog": "autolog.enable() (model saved at the end)",
              "autolog-nomodel": "autolog.enable(log_models=False)",
              "mlflow": "report_to='mlflow' (MLflowCallback, sqlite)"}
    rows = []
    for mode in modes:
        # each round's time against the plain training of the same round: a load spike on the
        # machine hits a round alike and cancels out of the ratio
        paired = statistics.median(t / p for t, p in zip(times[mode], times["plain"],
                                                          strict=True))
        floor = min(times["empty"]) if times["empty"] else None
        rows.append([labels[mode], f"{statistics.median(times[mode]):.3f}",
                     f"{min(times[mode]):.3f}", f"{(paired - 1) * 100:+.1f} %",
                     f"{(min(times[mode]) / floor - 1) * 100:+.2f} %" if floor else "n/a"])
    table(f"Trainer.train(): 2-layer BERT (hidden 32), {steps} steps, logging_steps={EVERY}, "
          f"4 evals; {repeats} rounds (budget: autolog < +2 %; best within 0.5 % of an empty "
          "callback's)",
          ["mode", "median s", "best s", "vs none (median of rounds)",
           "best vs empty callback"], rows)
    if not opts.no_hook_clock:
        report_hooks("inside autolog's hooks, timed around each call (median of fits)",
                     [(labels[mode], taken[mode], times[mode]) for mode in modes if taken[mode]])
    print(f"\nmedian of a plain step: {base / steps * 1e3:.2f} ms; work dir {work}")
    bench_on_log(work, 20_000 if not opts.quick else 5_000, has_mlflow, base / steps)


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _callback_cost(callback: object, args: object, n: int) -> float:
    """Seconds per ``on_log`` call, with the log dict the Trainer sends at each step."""
    from transformers import TrainerControl, TrainerState

    state, control = TrainerState(), TrainerControl()
    callback.on_train_begin(args, state, control, model=tiny_model())  # type: ignore[attr-defined]
    on_log = callback.on_log  # type: ignore[attr-defined]
    start = time.perf_counter()
    for i in range(n):
        state.global_step = i + 1
        logs = {"loss": 0.5 + i * 1e-6, "grad_norm": 1.25, "learning_rate": 1e-3, "epoch": i / n}
        on_log(args, state, control, logs=logs)
    return (time.perf_counter() - start) / n


def bench_on_log(work: Path, n: int, has_mlflow: bool, step_s: float) -> None:
    from transformers import TrainingArguments

    import autolog
    from autolog.integrations.transformers import AutologCallback

    args = TrainingArguments(output_dir=str(work / "cb"), report_to="none", use_cpu=True)
    autolog.disable()
    autolog_s = _callback_cost(AutologCallback(log_models=False), args, n)
    start = time.perf_counter()
    autolog.end_run()
    autolog.flush()
    flush_s = time.perf_counter() - start
    rows = [["AutologCallback.on_log", n, f"{autolog_s * 1e6:.1f}",
             f"{autolog_s / step_s * 100:.3f} %"],
            ["  + end of run and flush, per call", n, f"{(autolog_s + flush_s / n) * 1e6:.1f}",
             f"{(autolog_s + flush_s / n) / step_s * 100:.3f} %"]]
    if has_mlflow:
        import mlflow
        from transformers.integrations import MLflowCallback

        m = max(n // 50, 50)  # each call is a synchronous write to the store
        mlflow_s = _callback_cost(MLflowCallback(), args, m)
        mlflow.end_run()
        rows.append(["MLflowCallback.on_log (sqlite)", m, f"{mlflow_s * 1e6:.1f}",
                     f"{mlflow_s / step_s * 100:.3f} %"])
    table(f"one on_log call per step (4 metrics); a plain step above: {step_s * 1e3:.2f} ms",
          ["callback", "calls", "us per call", "of a step"], rows)


if __name__ == "__main__":
    main()
