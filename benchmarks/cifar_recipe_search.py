"""One-seed search over the small-input design and the recipe behind ``benchmarks/cifar_accuracy.py``'s defaults.

Each run trains RepGhostNet-0.5x for ``--budget`` seconds on the exact CIFAR-10 subset (REPGHOST_MINI_DATA) with
:func:`repghost_mini.train` and appends one JSON line (settings, top-1, epochs, img/s) to ``--results``.
``--stride 8`` rebuilds (nearly) the earlier small-input design, the first stride-2 bottleneck also at stride 1:
3x the MACs of the library's stride-16 variant. (The earlier code built that block without its downsampling
depthwise conv; here it stays, at stride 1: 12.4 M instead of 12.3 M MACs at 32 px.) One seed per setting: a search,
not a result; differences of 1-2 points are within seed noise (see cifar_accuracy.py for mean +- std).

    python benchmarks/cifar_recipe_search.py --stride 16 --batch-size 64 --lr 0.2 --weight-decay 5e-4
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import repghost_mini as r


def stride8(model):
    """Turn the library's stride-16 small-input model into the stride-8 design: first stride-2 block at stride 1."""
    first = next(b for stage in model.blocks[:-1] for b in stage if b.stride == 2)
    first.conv_dw.stride = (1, 1)
    first.shortcut[0].stride = (1, 1)
    first.stride = 1
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stride", type=int, choices=(8, 16), default=16)
    p.add_argument("--batch-size", type=int, default=r.training.SHORT_RUN_RECIPE["batch_size"])
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--weight-decay", type=float, default=r.training.SHORT_RUN_RECIPE["weight_decay"])
    p.add_argument("--ema-decay", type=float, default=0.98)
    p.add_argument("--budget", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default="runs/cifar_recipe_search")
    p.add_argument("--results", default="benchmarks/results/cifar_recipe_search.jsonl")
    args = p.parse_args(argv)
    tag = (f"s{args.stride}-bs{args.batch_size}-lr{args.lr:g}-wd{args.weight_decay:g}-ema{args.ema_decay:g}"
           f"-seed{args.seed}")
    cfg = r.TrainConfig(model="repghostnet_050", small_input=True, dataset="cifar10-subset", epochs=None,
                        time_budget=args.budget, seed=args.seed, threads=args.threads, eval_every=0, progress=False,
                        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                        ema_decay=args.ema_decay, out_dir=str(Path(args.work) / tag))

    def stride8_network(num_classes: int):  # the registry's model, changed to the stride-8 design
        return stride8(cfg.for_images(32).build(num_classes))

    res = r.train(cfg, network=stride8_network if args.stride == 8 else None)
    h = res.history
    row = dict(stride=args.stride, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
               ema_decay=args.ema_decay, budget=args.budget, seed=args.seed, threads=args.threads,
               top1=round(res.final["train_form"]["top1"], 2), fused_top1=round(res.final["fused"]["top1"], 2),
               epochs=len(h), img_s=round(sum(x["img_s"] for x in h) / len(h)), load_after=os.getloadavg()[0])
    print(json.dumps(row))
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    with open(args.results, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
