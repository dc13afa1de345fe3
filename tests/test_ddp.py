"""DistributedDataParallel on CPU: 2 processes on gloo, as `torchrun --nproc_per_node=2 -m repghost_mini train` runs.

Each process gets torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) and calls the same
library function the CLI calls, :func:`repghost_mini.train`; after the steps the parameters must be identical on
both ranks (gradients were averaged), and only rank 0 writes the run folder.
"""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

import repghost_mini as r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world: int, port: int, tmp: str, sync_bn: bool) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    from test_train import TINY, colour_bundle

    bundle = colour_bundle(n_train=64, n_test=16)
    res = r.train(bundle=bundle, epochs=1, out_dir=os.path.join(tmp, f"rank{rank}"), ema_decay=None,
                  sync_bn=sync_bn, eval_every=1, **TINY)
    params = {k: v for k, v in res.model.named_parameters()}
    torch.save({"params": params, "steps": res.history[-1]["steps"], "final": res.final is not None,
                "train_loss": res.history[-1]["train_loss"]}, os.path.join(tmp, f"out{rank}.pt"))


@pytest.mark.slow
def test_two_cpu_processes_stay_in_sync(tmp_path):
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this PyTorch build has no gloo backend for CPU DistributedDataParallel")
    tests_dir = os.path.dirname(__file__)
    old = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = tests_dir + (os.pathsep + old if old else "")  # spawned children import test_train
    try:
        mp.spawn(worker, args=(2, free_port(), str(tmp_path), False), nprocs=2, join=True)
    finally:
        os.environ["PYTHONPATH"] = old
    out0 = torch.load(tmp_path / "out0.pt", weights_only=True)
    out1 = torch.load(tmp_path / "out1.pt", weights_only=True)
    assert out0["steps"] == out1["steps"] == 2  # 64 images, 2 ranks, batch 16 per rank
    for k, v in out0["params"].items():
        assert torch.equal(v, out1["params"][k]), f"{k} differs between ranks"
    torch.manual_seed(0)  # the trainer's seeded initialization, to check that the steps changed the weights
    init = dict(r.build_model("repghostnet", 4, small_input=True, width=0.1).named_parameters())
    assert not torch.equal(init["classifier.weight"], out0["params"]["classifier.weight"])
    assert out0["train_loss"] == out1["train_loss"]  # the logged loss is averaged over both ranks
    assert (tmp_path / "rank0" / "checkpoint.pth").is_file() and out0["final"]
    assert not (tmp_path / "rank1").exists() and not out1["final"]  # rank 0 only writes and evaluates
    # (sync_bn=True needs CUDA: PyTorch's SyncBatchNorm is GPU-only, and train() says so in one sentence)
