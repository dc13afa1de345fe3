"""Training throughput (images/s) of RepGhostNet-0.5x vs timm's repghostnet_050 in the same loop, and eager vs
``torch.compile`` (``train --compile``) side by side.

32x32 CIFAR-10 batches of 128 from the exact subset (REPGHOST_MINI_DATA), the trainer's step (SGD momentum 0.9,
label-smoothed cross-entropy, EMA update), N CPU threads; the small-input model also in channels_last (NHWC)
memory order, the trainer's default. Models are measured interleaved, in rounds, so load
from other processes on a shared machine hits all of them alike; the median over rounds is reported together with
the share of step time spent waiting for the next batch (data loading + augmentation).

    python benchmarks/train_throughput.py --threads 2 --rounds 5 --steps 8 --out /work/notes/train_throughput.md
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import repghost_mini as r

#: The trainer's default on CPU and CUDA (TrainConfig.channels_last=None): weights and batches in NHWC memory order.
CHANNELS_LAST = "ours repghostnet_050 (small_input, channels_last)"
#: The same through torch.compile (train --compile); its first steps compile, timed apart as "compile time".
COMPILED = "ours repghostnet_050 (small_input, channels_last, torch.compile)"
NHWC = (CHANNELS_LAST, COMPILED)


def models():
    import timm

    torch.manual_seed(0)
    return {
        "ours repghostnet_050 (standard stem)": r.build_model("repghostnet_050", 10, small_input=False),
        "ours repghostnet_050 (small_input)": r.build_model("repghostnet_050", 10, small_input=True),
        "timm repghostnet_050": timm.create_model("repghostnet_050", num_classes=10, drop_rate=0.2),
        CHANNELS_LAST: r.build_model("repghostnet_050", 10, small_input=True).to(memory_format=torch.channels_last),
        COMPILED: r.build_model("repghostnet_050", 10, small_input=True).to(memory_format=torch.channels_last),
    }


def run_steps(model, ema, opt, loader_iter, steps, criterion, channels_last=False):
    """``steps`` trainer steps; returns (seconds, seconds waiting for data)."""
    wait = 0.0
    t0 = t_prev = time.perf_counter()
    for _ in range(steps):
        x, y = next(loader_iter)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        t_got = time.perf_counter()
        wait += t_got - t_prev
        loss = criterion(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update_parameters(model)
        t_prev = time.perf_counter()
    return t_prev - t0, wait


def endless(loader):
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=8, help="steps per model per round")
    p.add_argument("--out", default=None, help="Markdown file to write the table to")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    bundle = r.load_dataset("cifar10-subset")
    nets = models()
    state = {}
    compile_seconds = None
    for name, m in nets.items():
        m.train()
        loader, _ = r.make_loaders(bundle, args.batch_size, seed=0)
        state[name] = (AveragedModel(m, multi_avg_fn=get_ema_multi_avg_fn(0.99), use_buffers=True),
                       torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-5), endless(loader))
        if name == COMPILED:
            nets[name] = torch.compile(m)  # the EMA and the optimizer keep the module's own parameters
        t0 = time.perf_counter()
        run_steps(nets[name], *state[name], 2, nn.CrossEntropyLoss(label_smoothing=0.1), name in NHWC)  # warm-up
        if name == COMPILED:
            compile_seconds = time.perf_counter() - t0
    rates = {n: [] for n in nets}
    waits = {n: [] for n in nets}
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    for rnd in range(args.rounds):
        order = list(nets) if rnd % 2 == 0 else list(reversed(nets))
        for name in order:
            sec, wait = run_steps(nets[name], *state[name], args.steps, crit, name in NHWC)
            rates[name].append(args.steps * args.batch_size / sec)
            waits[name].append(wait / sec)
        print(f"round {rnd + 1}: " + ", ".join(f"{n}: {rates[n][-1]:.0f} img/s" for n in nets), flush=True)
    load = os.getloadavg()
    macs = {n: r.count_macs(m.eval(), (1, 3, 32, 32)) for n, m in nets.items() if n != COMPILED}
    macs[COMPILED] = macs[CHANNELS_LAST]
    lines = [f"Training throughput, batch {args.batch_size}, 32x32 CIFAR-10 subset, {args.threads} CPU threads, "
             f"torch {torch.__version__}; median of {args.rounds} interleaved rounds x {args.steps} steps; "
             f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared machine).", "",
             "| model | MMACs / image | img/s (median) | min - max | data wait share |", "|---|---|---|---|---|"]
    for n in nets:
        lines.append(f"| {n} | {macs[n] / 1e6:.1f} | {statistics.median(rates[n]):.0f} | "
                     f"{min(rates[n]):.0f} - {max(rates[n]):.0f} | {100 * statistics.median(waits[n]):.1f}% |")
    names = list(nets)
    ratio = statistics.median(a / b for a, b in zip(rates[names[0]], rates[names[2]], strict=True))
    cl_ratio = statistics.median(a / b for a, b in zip(rates[CHANNELS_LAST], rates[names[1]], strict=True))
    lines += ["", f"ours (standard stem) / timm, same architecture, median of per-round ratios: {ratio:.2f}x",
              f"small_input channels_last / small_input NCHW (the trainer's default since this measurement / before), "
              f"median of per-round ratios: {cl_ratio:.2f}x",
              f"torch.compile / eager (both small_input channels_last), median of per-round ratios: "
              f"{statistics.median(a / b for a, b in zip(rates[COMPILED], rates[CHANNELS_LAST], strict=True)):.2f}x "
              f"(goal >= 1.5x); compile time (first 2 steps) {compile_seconds:.0f} s, not in the img/s"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
