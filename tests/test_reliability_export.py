"""Issue #11 items 5, 7, 14 (ONNX): atomic writes (a full disk while overwriting leaves the good file),
check_onnx_matches leaves a train-mode model's BatchNorm buffers alone and says what mismatched, unusable
files give one sentence instead of onnxruntime / protobuf dumps."""
import contextlib
import os
import subprocess

import pytest
import torch

import repghost_mini as rg
from repghost_mini.core.networks import REPGHOSTNET_CFG
from repghost_mini.deploy.export import OnnxFileError, check_onnx_matches, count_onnx_ops, export_onnx, onnx_session

SIZE = (1, 3, 32, 32)


def small(num_classes=10, seed=0):
    torch.manual_seed(seed)
    model = rg.RepGhostNet(width=0.5, num_classes=num_classes, small_input=True, cfg=REPGHOSTNET_CFG[:2]).eval()
    return rg.randomize_bn_stats_(model, seed=1)


def one_line(msg: str) -> str:
    assert "\n" not in msg and 20 < len(msg) < 600, msg
    return msg


@contextlib.contextmanager
def tmpfs(folder, size="1m", read_only=False):
    """A small tmpfs at ``folder`` (root only; the test is skipped where mounting is not permitted)."""
    folder.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()[:80]})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def fill(folder):
    """Write a filler file until the disk is full."""
    with open(folder / "filler", "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    model = small()
    return model, {"dynamic": export_onnx(model, folder / "dynamic.onnx", SIZE),
                   "static": export_onnx(model, folder / "static.onnx", SIZE, dynamic_batch=False)}


@pytest.mark.slow
def test_full_disk_while_overwriting_keeps_the_good_file(tmp_path, files):
    with tmpfs(tmp_path / "disk") as disk:
        good = disk / "model.onnx"
        good.write_bytes(files[1]["dynamic"].read_bytes())
        before = good.read_bytes()
        fill(disk)
        with pytest.raises(OSError, match="disk is full") as err:
            export_onnx(small(seed=5), good, SIZE)
        assert "unchanged" in one_line(str(err.value))
        assert good.read_bytes() == before and sorted(p.name for p in disk.iterdir()) == ["filler", "model.onnx"]
        count_onnx_ops(good)  # still a valid model


def test_unwritable_targets_give_one_line(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OSError, match="is a file, not a folder") as err:
        export_onnx(small(), tmp_path / "a_file" / "m.onnx", SIZE)
    one_line(str(err.value))
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        with pytest.raises(OSError, match="read-only") as err:
            export_onnx(small(), ro / "m.onnx", SIZE)
        one_line(str(err.value))


def test_written_file_has_the_usual_mode_and_no_temporary_is_left(files):
    _, paths = files
    umask = os.umask(0)
    os.umask(umask)
    assert paths["dynamic"].stat().st_mode & 0o777 == 0o666 & ~umask
    assert not [p for p in paths["dynamic"].parent.iterdir() if p.name.endswith(".tmp")]


def test_check_on_a_train_mode_model_leaves_its_batchnorm_buffers_alone(files):
    model, paths = files
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert check_onnx_matches(model, paths["dynamic"], SIZE, batch_sizes=(2,)) < 1e-3  # compared in eval mode
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.eval()


def test_other_num_classes_is_named_not_blamed_on_the_batch(files):
    _, paths = files
    with pytest.raises(AssertionError, match="different networks") as err:
        check_onnx_matches(small(num_classes=7), paths["dynamic"], SIZE, batch_sizes=(1,))
    assert "(1, 10)" in str(err.value) and "(1, 7)" in str(err.value) and "dynamic" not in str(err.value)


def test_static_batch_and_wrong_input_size(files):
    model, paths = files
    with pytest.raises(OnnxFileError, match="fixed batch size of 1") as err:
        check_onnx_matches(model, paths["static"], SIZE, batch_sizes=(1, 3))
    one_line(str(err.value))
    assert check_onnx_matches(model, paths["static"], SIZE, batch_sizes=(1,)) < 1e-3
    with pytest.raises(OnnxFileError, match="expects inputs of shape"):
        check_onnx_matches(model, paths["static"], (1, 3, 64, 64), batch_sizes=(1,))


@pytest.mark.parametrize("content", [b"", b"hello, I am not a model\n", os.urandom(2000),
                                     b"\x08\x07\x12\x04test" + os.urandom(64)])
def test_garbage_onnx_files_give_one_line(tmp_path, files, content):
    model, _ = files
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    for call in (lambda: count_onnx_ops(path), lambda: onnx_session(path),
                 lambda: check_onnx_matches(model, path, SIZE)):
        with pytest.raises(OnnxFileError) as err:
            call()
        assert str(path) in one_line(str(err.value))
    with pytest.raises(IsADirectoryError, match="is a folder"):
        count_onnx_ops(tmp_path)
