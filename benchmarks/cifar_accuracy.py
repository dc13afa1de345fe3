"""Accuracy within a CPU time budget on the exact CIFAR-10 subset (issue 4): ours vs timm's stock repghostnet_050.

Each run trains with :func:`repghost_mini.train` (the same loop, recipe and budget for every model) on the
5,169 training images of the exact CIFAR-10 subset (REPGHOST_MINI_DATA) and reports top-1 on its 1,017 test
images: the weights the trainer returns (EMA), their re-parameterized form, and the raw (non-EMA) weights.
Runs alternate between models so that changing load on a shared machine hits both alike. Results are
appended to a JSON file after every run, so an interrupted benchmark continues where it stopped.

    python benchmarks/cifar_accuracy.py --budget 300 --seeds 0 1 2 --threads 2 --out /work/notes/cifar_accuracy.md
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch

import repghost_mini as r

MODELS = {"ours": dict(model="repghostnet_050", small_input=True),
          "timm": dict(model="timm:repghostnet_050", small_input=False)}


def one_run(name: str, seed: int, args) -> dict:
    load_before = os.getloadavg()[0]
    cfg = r.TrainConfig(dataset="cifar10-subset", epochs=None, time_budget=args.budget, seed=seed,
                        threads=args.threads, eval_every=0, progress=False, batch_size=args.batch_size, lr=args.lr,
                        weight_decay=args.weight_decay,
                        warmup=args.warmup, label_smoothing=args.label_smoothing, ema_decay=args.ema_decay,
                        random_erasing=args.random_erasing, out_dir=str(Path(args.work) / f"{name}-seed{seed}"),
                        **MODELS[name])
    res = r.train(cfg)
    raw = r.training.load_trained(res.run_dir, use_ema=False)
    _, test = r.make_loaders(r.load_dataset("cifar10-subset"), 256)
    raw_top1 = r.evaluate(raw, test)["top1"]
    h = res.history
    return {"model": name, "seed": seed, "top1": res.final["train_form"]["top1"],
            "fused_top1": res.final["fused"]["top1"], "top5": res.final["train_form"]["top5"],
            "agreement": res.final["agreement"], "raw_top1": raw_top1,
            "epochs": len(h), "steps": h[-1]["steps"], "train_seconds": h[-1]["elapsed"],
            "img_s": statistics.mean(x["img_s"] for x in h), "data_wait": statistics.mean(x["data_wait"] for x in h),
            "load_before": load_before, "load_after": os.getloadavg()[0]}


def mean_std(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=300.0, help="training seconds per run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=r.training.SHORT_RUN_RECIPE["batch_size"])
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--weight-decay", type=float, default=r.training.SHORT_RUN_RECIPE["weight_decay"],
                   help="the paper's 1e-5 suits 1.28 M images x 300 epochs; "
                        "see repghost_mini.training.SHORT_RUN_RECIPE")
    p.add_argument("--warmup", type=float, default=0.05)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--ema-decay", type=float, default=0.98)
    p.add_argument("--random-erasing", type=float, default=0.2)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--work", default="runs/cifar_accuracy", help="run folders and results.json")
    p.add_argument("--out", default=None, help="Markdown file for the table")
    args = p.parse_args(argv)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    results_path = Path(args.work) / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else []
    done = {(x["model"], x["seed"]) for x in results}
    for i, seed in enumerate(args.seeds):
        order = args.models if i % 2 == 0 else list(reversed(args.models))
        for name in order:
            if (name, seed) in done:
                continue
            row = one_run(name, seed, args)
            results.append(row)
            results_path.write_text(json.dumps(results, indent=1))
            print(json.dumps(row), flush=True)
    lines = [f"CIFAR-10 exact subset (5,169 train / 1,017 test), {args.budget:.0f} s training budget per run "
             f"(wall clock, evaluation excluded), {args.threads} CPU threads, batch {args.batch_size}, SGD lr "
             f"{args.lr} (warm-up {args.warmup:.0%}, cosine to 0 over the budget), label smoothing "
             f"{args.label_smoothing}, EMA {args.ema_decay}, random erasing {args.random_erasing}, dropout 0.2, "
             f"wd {args.weight_decay:g}; seeds {args.seeds}. torch {torch.__version__}.", "",
             "| model | top-1 (EMA, mean +- std) | fused top-1 | raw-weights top-1 | epochs | img/s | data wait | "
             "load avg during runs |", "|---|---|---|---|---|---|---|---|"]
    for name in args.models:
        rows = [x for x in results if x["model"] == name and x["seed"] in args.seeds]
        if not rows:
            continue
        m, s = mean_std([x["top1"] for x in rows])
        fm, fs = mean_std([x["fused_top1"] for x in rows])
        rm, rs = mean_std([x["raw_top1"] for x in rows])
        label = "ours repghostnet_050 small_input" if name == "ours" else "timm repghostnet_050 (stock)"
        lines.append(f"| {label} | {m:.2f} +- {s:.2f} | {fm:.2f} +- {fs:.2f} | {rm:.2f} +- {rs:.2f} | "
                     f"{statistics.mean(x['epochs'] for x in rows):.1f} | "
                     f"{statistics.mean(x['img_s'] for x in rows):.0f} | "
                     f"{100 * statistics.mean(x['data_wait'] for x in rows):.1f}% | "
                     f"{min(x['load_before'] for x in rows):.1f} - {max(x['load_after'] for x in rows):.1f} |")
    lines.append("")
    lines.append("Per run: " + "; ".join(f"{x['model']} seed {x['seed']}: {x['top1']:.2f}% ({x['epochs']} epochs, "
                                         f"{x['steps']} steps)" for x in results))
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
