"""The reference CIFAR-10 model: RepGhostNet-0.5x (small input) trained on all 50,000 CIFAR-10 training images.

Notebook 05 trains the same network, with the same recipe, for two CPU minutes on a 5,169-image subset; this
script trains it for as long as it needs (``--epochs``) so that the notebook can set "your 2 minutes" beside
"N minutes of the same recipe". It uses :func:`repghost_mini.train` unchanged (CUDA + AMP + channels_last when a
GPU is present, otherwise the CPU). From the finished run it reports the raw weights of the last step, the EMA as the
trainer keeps it and the EMA with its BatchNorm statistics recomputed on the training images (as SWA does for an
average of weights) on the 10,000 test images, keeps the weights the trainer kept, and only if their fused form
reaches ``--min-top1`` (85%) writes those fused weights in float16 to ``repghost_mini/weights/``
(loadable by name: ``repghost_mini.training.load_reference_model("cifar10")``); the Markdown log goes to
``benchmarks/results/cifar_reference.md`` either way.

    REPGHOST_MINI_DATA=../shared/data python benchmarks/cifar_reference.py --budget 5000 --threads 2

Runs can be continued in chunks (``--stop-after N`` then the same command with ``--resume``); ``--from-run DIR``
only chooses, reports and writes from a finished run folder.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
from torch.optim.swa_utils import update_bn

import repghost_mini as r

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="repghostnet_050")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs of the cosine schedule; without it the schedule follows --budget (seconds)")
    p.add_argument("--budget", type=float, default=None, help="training seconds (evaluation excluded)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.4)
    p.add_argument("--weight-decay", type=float, default=r.training.SHORT_RUN_RECIPE["weight_decay"])
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--dropout", type=float, default=0.2, help="dropout before the classifier")
    p.add_argument("--random-erasing", type=float, default=0.0,
                   help="random-erasing probability (0: off; a 4-MMAC network underfits rather than overfits)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for training (default: all)")
    p.add_argument("--stop-after", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=5, help="evaluate on the test set every N epochs")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--from-run", default=None, help="a finished run folder: only choose the weights, report and write")
    p.add_argument("--min-top1", type=float, default=85.0)
    p.add_argument("--out", default="runs/cifar10-reference")
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "cifar_reference.md"))
    p.add_argument("--weights", default=str(ROOT / "repghost_mini" / "weights" / "cifar10_repghostnet_050.pth"))
    args = p.parse_args(argv)

    cfg = r.TrainConfig(model=args.model, small_input=True, dataset="cifar10", epochs=args.epochs,
                        time_budget=args.budget,
                        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                        ema_decay=args.ema_decay, dropout=args.dropout,
                        random_erasing=args.random_erasing, seed=args.seed, device=args.device, workers=args.workers, threads=args.threads,
                        out_dir=args.out, resume=args.resume, stop_after=args.stop_after, progress=False,
                        eval_every=args.eval_every)
    t0 = time.perf_counter()
    if args.from_run:  # a finished run: only choose, report and write
        run_dir = Path(args.from_run)
    else:
        res = r.train(cfg)
        run_dir = res.run_dir
        for row in res.history[-3:]:
            print(json.dumps(row))
        if args.stop_after and args.epochs and len(res.history) < args.epochs:
            print(f"stopped after epoch {len(res.history)} of {args.epochs}; continue with --resume")
            return 0
    wall = time.perf_counter() - t0
    ckpt = r.training.read_checkpoint(run_dir / "checkpoint.pth")
    if not ckpt.raw.get("finished"):
        raise SystemExit(f"{run_dir} holds an unfinished run; continue it with --resume first.")
    history, recipe = ckpt.raw["history"], ckpt.run_config
    bundle = r.load_dataset(recipe["dataset"], recipe.get("data_path"), train_per_class=recipe.get("train_per_class"),
                            test_per_class=recipe.get("test_per_class"))
    train_loader, test_loader = r.make_loaders(bundle, 500, augment=False)
    scores, (name, model) = candidates(ckpt, train_loader, test_loader)
    final = r.training.evaluate_reparameterized(model, test_loader)
    top1 = final["fused"]["top1"]
    train_seconds = history[-1]["elapsed"]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else \
        f"{platform.processor() or platform.machine()}, {recipe.get('threads') or torch.get_num_threads()} CPU threads"
    schedule = "fixed" if recipe.get("epochs") else \
        f"{recipe['time_budget']:.0f} s budget, the cosine schedule following the elapsed time"
    lines = [
        "# Reference CIFAR-10 model (benchmarks/cifar_reference.py)",
        "",
        f"`{recipe['model']}`, small input (stem at stride 1); {len(bundle.train):,} training images of "
        f"{bundle.name} (`{Path(bundle.source).name}`), evaluated on its {len(bundle.test):,} test images.",
        f"Recipe: {len(history)} epochs ({schedule}), "
        f"batch {recipe['batch_size']}, SGD momentum {recipe['momentum']} lr {recipe['lr']} (warm-up + cosine), "
        f"weight decay {recipe['weight_decay']}, label smoothing {recipe['label_smoothing']}, dropout {recipe['dropout']}, "
        f"EMA decay {recipe['ema_decay']}, crop + flip, random erasing {recipe['random_erasing']}; seed {recipe['seed']}.",
        f"Device: {device}; training time {train_seconds / 60:.1f} min (command: `{' '.join(['python', 'benchmarks/cifar_reference.py'] + (argv or sys.argv[1:]))}`).",
        "",
        f"The run's weights, top-1 on the {len(bundle.test):,} test images (training form):",
        "",
        "| weights | test top-1 |",
        "|---|---|",
    ] + [f"| {k} | {v:.2f}% |" for k, v in scores.items()] + [
        "",
        f"Kept: the weights the run kept (the trainer's rule), **{name}**: training form top-1 {final['train_form']['top1']:.2f}%, fused top-1 {top1:.2f}%, "
        f"top-5 {final['fused']['top5']:.2f}%, same predictions {100 * final['agreement']:.2f}%.",
        "",
        "| epoch | lr | train loss | train acc | test top-1 | EMA top-1 | minutes |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in history:
        if row["epoch"] % 5 == 0 or row["epoch"] in (1, len(history)):
            fmt = (lambda v: "-" if v is None else f"{v:.2f}")
            lines.append(f"| {row['epoch']} | {row['lr']:.4f} | {row['train_loss']:.3f} | {row['train_acc']:.1f} | "
                         f"{fmt(row['test_top1'])} | {fmt(row['ema_top1'])} | {row['elapsed'] / 60:.1f} |")
    lines.append("")
    gaps = [(row["test_top1"] - row["ema_top1"], row["epoch"]) for row in history
             if row["test_top1"] is not None and row["ema_top1"] is not None]
    if gaps:
        gap, epoch = max(gaps)
        lines.append(f"EMA top-1 during training is measured with the BatchNorm statistics averaged alongside the "
                     f"weights, as the trainer keeps them; the raw weights led it by up to {gap:.1f} points (epoch "
                     f"{epoch}) and by {gaps[-1][0]:+.1f} at the end.")
    if top1 >= args.min_top1:
        fused = r.reparameterize(model.eval())
        weights = Path(args.weights)
        weights.parent.mkdir(parents=True, exist_ok=True)
        keep = {k: v for k, v in recipe.items() if k not in ("out_dir", "resume", "data_path")}
        r.training.save_checkpoint(weights, fused, recipe["model"], run_config=keep, fused=True,
                          class_names=ckpt.class_names, image_size=32, dtype=torch.float16, test_top1=top1,
                          train_minutes=train_seconds / 60, device=device, weights_kept=name)
        shown = weights.resolve().relative_to(ROOT) if weights.resolve().is_relative_to(ROOT) else weights
        lines += ["", f"Fused weights written in float16 to `{shown}` "
                      f"({weights.stat().st_size / 1e6:.2f} MB)."]
    else:
        lines += ["", f"Fused top-1 {top1:.2f}% is below {args.min_top1}%: no weights written."]
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"(this call: {wall / 60:.1f} min of training)")
    return 0


def candidates(ckpt, train, test):
    """``({name: test top-1}, (kept name, kept model))`` over the run's raw weights, its EMA weights and the EMA
    weights with BatchNorm statistics recomputed on the (unaugmented) training images; kept are the weights the
    trainer kept (final.json's ``weights``). ``train`` / ``test``: unaugmented loaders."""
    models = {"raw (last step)": ckpt.build_model(use_ema=False)}
    if ckpt.has_ema:
        models["EMA"] = ckpt.build_model(use_ema=True)
        recalibrated = ckpt.build_model(use_ema=True)
        update_bn(train, recalibrated)
        models["EMA, BatchNorm statistics recomputed"] = recalibrated.eval()
    scores = {name: r.evaluate(m, test)["top1"] for name, m in models.items()}
    kept = "EMA" if ckpt.kept_weights == "ema" else "raw (last step)"
    return scores, (kept, models[kept])


if __name__ == "__main__":
    raise SystemExit(main())
