"""The reference CIFAR-10 model: ship a finished run of the project's own ``train`` command.

The run is an ordinary ``train`` run on all of CIFAR-10 (the exact command line is in the README, section "The
reference CIFAR-10 model"; it keeps 10% of the training split aside to choose between its EMA and raw weights and
never looks at the test split for a choice). This script reads the finished run folder and

* scores its raw weights, its EMA weights and the EMA with BatchNorm statistics recomputed on the training images
  (as SWA does for an average of weights) on the 10,000 test images -- a report only: the weights kept are the
  ones the trainer kept on its held-out slice;
* re-parameterizes the kept weights and checks that the fused form makes the same predictions;
* only if the fused top-1 reaches ``--min-top1`` (85%) writes the kept *training-form* weights in float16, with
  their model card, the run's per-epoch history and the commands that trained them, to
  ``repghost_mini/weights/`` (:func:`repghost_mini.training.load_reference_model` fuses them on loading;
  ``python -m repghost_mini eval repghost_mini/weights/<file> --dataset cifar10`` scores them);
* writes the Markdown log to ``benchmarks/results/cifar_reference.md`` either way.

    REPGHOST_MINI_DATA=../shared/data python benchmarks/cifar_reference.py RUN_FOLDER
"""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import torch
from torch.optim.swa_utils import update_bn

import repghost_mini as r
from repghost_mini import cli

ROOT = Path(__file__).resolve().parents[1]
#: Settings that say how a run was driven, not what it learned: left out of the reconstructed command. The run's
#: ``changes`` do not record them, so a value that differed between its commands could not be written back
#: (``eval_every``: how often the test split is scored for the curves; the in-memory CIFAR-10 batches do not
#: depend on it).
NOT_RECIPE = {"resume", "allow_changes", "progress", "data_path", "out_dir", "stop_after", "checkpoint", "eval_every"}
#: Settings written out even at their default value, so that the command reads as the whole recipe.
RECIPE = {"model", "dataset", "epochs", "batch_size", "lr", "warmup", "weight_decay", "dropout", "label_smoothing",
          "ema_decay", "holdout", "random_erasing", "seed"}


def train_command(config: dict) -> str:
    """The ``train`` command line of ``config`` (a run's ``TrainConfig.to_dict()``): every :data:`RECIPE` setting
    and any other that differs from the defaults; checked by parsing it back with the CLI's own parser."""
    defaults = r.TrainConfig().to_dict()
    words = ["python", "-m", "repghost_mini", "train"]
    for flags, kw in cli._TRAIN_ARGS:
        dest = kw.get("dest", flags[0][2:].replace("-", "_"))
        if dest in NOT_RECIPE or dest not in config or (config[dest] == defaults.get(dest) and dest not in RECIPE):
            continue
        value, action = config[dest], kw.get("action")
        if action == "store_const" or action == "store_true":
            if value == kw.get("const", True):
                words.append(flags[0])
        elif action is argparse.BooleanOptionalAction:
            words.append(flags[0] if value else "--no-" + flags[0][2:])
        elif value is None:  # a flag with a value cannot say None; a store_const flag (--no-ema) does
            continue
        elif isinstance(value, (list, tuple)):
            words += [flags[0], ",".join(map(str, value))]
        else:
            words += [flags[0], f"{value:g}" if isinstance(value, float) else str(value)]
    command = " ".join(shlex.quote(w) for w in words)
    parsed = cli.build_parser().parse_args(words[3:])
    again = r.TrainConfig(**cli._train_overrides(parsed)).to_dict()
    differ = sorted(k for k in config if k not in NOT_RECIPE and k in again and again[k] != config[k]
                    and not (isinstance(config[k], (list, tuple)) and tuple(config[k]) == tuple(again[k] or ())))
    if differ:
        raise RuntimeError(f"the reconstructed command does not reproduce the run's settings {differ}: {command}")
    return command


def train_commands(config: dict, changes: list) -> list:
    """The command lines that made a run in the folder RUN: one :func:`train_command`, and for each change of
    settings on resume (the checkpoint's ``changes``: ``{"epoch": N, "changed": {key: [old, new]}}``) one more with
    the new settings and ``--resume --allow-changes``."""
    first = dict(config)
    for change in reversed(changes):
        first.update({key: old for key, (old, new) in change["changed"].items()})
    commands, current = [f"{train_command(first)} --out RUN"], first
    for change in changes:
        current = {**current, **{key: new for key, (old, new) in change["changed"].items()}}
        commands.append(f"{train_command(current)} --out RUN --resume --allow-changes")
    return commands


def candidates(ckpt, train, test):
    """``({name: test top-1}, (kept name, kept model))`` over the run's raw weights, its EMA weights and the EMA
    weights with BatchNorm statistics recomputed on the (unaugmented) training images; kept are the weights the
    trainer kept on its held-out slice (the checkpoint's ``weights``). ``train`` / ``test``: unaugmented loaders."""
    models = {"raw (last step)": ckpt.build_model(use_ema=False)}
    if ckpt.has_ema:
        models["EMA"] = ckpt.build_model(use_ema=True)
        recalibrated = ckpt.build_model(use_ema=True)
        update_bn(train, recalibrated)
        models["EMA, BatchNorm statistics recomputed"] = recalibrated.eval()
    scores = {name: r.evaluate(m, test)["top1"] for name, m in models.items()}
    kept = "EMA" if ckpt.kept_weights == "ema" else "raw (last step)"
    return scores, (kept, models[kept])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="the folder of a finished `train` run on cifar10")
    p.add_argument("--min-top1", type=float, default=85.0)
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "cifar_reference.md"))
    p.add_argument("--weights",
                   default=str(r.training.checkpoints.WEIGHTS_DIR / r.training.REFERENCE_MODELS["cifar10"]))
    args = p.parse_args(argv)

    ckpt = r.training.read_checkpoint(args.run)
    if not ckpt.raw.get("finished"):
        raise SystemExit(f"{args.run} holds an unfinished run; continue it with `train ... --resume` first.")
    history, recipe = ckpt.raw["history"], ckpt.run_config
    if recipe["dataset"] != "cifar10" or recipe.get("train_per_class") or recipe.get("test_per_class"):
        raise SystemExit(f"{args.run} was trained on {recipe['dataset']} (limits {recipe.get('train_per_class')} / "
                         f"{recipe.get('test_per_class')}); the reference model is trained on all of cifar10.")
    changes = ckpt.raw.get("changes") or []
    commands = train_commands(recipe, changes)
    bundle = r.load_dataset("cifar10", recipe.get("data_path"), download=False)
    train_loader, test_loader = r.make_loaders(bundle, 500, augment=False)
    scores, (name, model) = candidates(ckpt, train_loader, test_loader)
    final = r.training.evaluate_reparameterized(model, test_loader)
    top1 = final["fused"]["top1"]
    train_minutes = history[-1]["elapsed"] / 60
    threads = recipe.get("threads") or torch.get_num_threads()
    device = (torch.cuda.get_device_name() if recipe.get("device") == "cuda" else
              f"{r.teaching.runs.cpu_description()}, {threads} CPU threads")
    held_out = f"{100 * recipe['holdout']:g}%" if ckpt.has_ema else "none"
    lines = [
        "# Reference CIFAR-10 model (benchmarks/cifar_reference.py)",
        "",
        f"`{recipe['model']}`, small input (stem at stride 1), trained on CIFAR-10 (`{Path(bundle.source).name}`: "
        f"{len(bundle.train):,} training images, {held_out} of them held out to choose the EMA or the raw weights) "
        f"and evaluated once on its {len(bundle.test):,} test images.",
        "Commands: " + ", then ".join(f"`{c}`" for c in commands)
        + " (then `python benchmarks/cifar_reference.py RUN`)."
        + "".join(f" After epoch {c['epoch']} the run continued with "
                  + ", ".join(f"{key} {old} -> {new}" for key, (old, new) in c["changed"].items())
                  + " (`--allow-changes`: the learning-rate schedule restarted, a cosine without warm-up from the "
                    "run's --lr to 0 over the remaining epochs)." for c in changes),
        f"{len(history)} epochs, {train_minutes:.1f} min of training on {device}.",
        "",
        f"The run's weights, top-1 on the {len(bundle.test):,} test images (training form; a report, not a choice):",
        "",
        "| weights | test top-1 |",
        "|---|---|",
    ] + [f"| {k} | {v:.2f}% |" for k, v in scores.items()] + [
        "",
        f"Kept (the trainer's choice on the held-out slice): **{name}**: training form top-1 "
        f"{final['train_form']['top1']:.2f}%, fused top-1 {top1:.2f}%, top-5 {final['fused']['top5']:.2f}%, same "
        f"predictions {100 * final['agreement']:.2f}%.",
        "",
        "| epoch | lr | train loss | train acc | test top-1 | EMA top-1 | minutes |",
        "|---|---|---|---|---|---|---|",
    ]

    def fmt(v):
        return "-" if v is None else f"{v:.2f}"

    for row in history:
        if row["epoch"] % 5 == 0 or row["epoch"] in (1, len(history)):
            lines.append(f"| {row['epoch']} | {row['lr']:.4f} | {row['train_loss']:.3f} | {row['train_acc']:.1f} | "
                         f"{fmt(row['test_top1'])} | {fmt(row['ema_top1'])} | {row['elapsed'] / 60:.1f} |")
    if top1 >= args.min_top1:
        weights = Path(args.weights)
        weights.parent.mkdir(parents=True, exist_ok=True)
        card = ckpt.card.replace(weights=ckpt.kept_weights, top1=final["train_form"]["top1"],
                                 top1_split=f"cifar10 test split, {len(bundle.test)} images")
        r.training.save_checkpoint(weights, model, recipe["model"], run_config=recipe, fused=False,
                                   class_names=bundle.class_names, image_size=bundle.image_size,
                                   dtype=torch.float16, card=card, test_top1=top1, train_minutes=train_minutes,
                                   device=device, weights=ckpt.kept_weights, history=history, commands=commands)
        shown = weights.resolve().relative_to(ROOT) if weights.resolve().is_relative_to(ROOT) else weights
        lines += ["", f"Training-form weights written in float16 to `{shown}` ({weights.stat().st_size / 1e6:.2f} MB);"
                      " `repghost_mini.training.load_reference_model('cifar10')` fuses them on loading."]
    else:
        lines += ["", f"Fused top-1 {top1:.2f}% is below {args.min_top1}%: no weights written."]
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
