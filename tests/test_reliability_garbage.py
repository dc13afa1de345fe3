"""Issue #11, property test: random bytes given as a checkpoint, an ONNX file, an .npz or an image never produce
anything but a one-line error of the documented kind (or, where the bytes happen to be valid, a result)."""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import repghost_mini as rg
from repghost_mini.deploy.export import OnnxFileError
from repghost_mini.training.data import DataError

GARBAGE = st.one_of(st.binary(max_size=3000),
                    st.sampled_from([b"PK\x03\x04", b"\x80\x02", b"\x08\x07\x12", b"\xff\xd8\xff\xe0"]).flatmap(
                        lambda magic: st.binary(max_size=600).map(lambda tail: magic + tail)))  # real magic numbers
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_one_line(err: BaseException) -> None:
    msg = str(err)
    assert msg and "\n" not in msg and len(msg) < 1000, repr(msg)
    assert "Traceback" not in msg


MODEL = rg.repghostnet(0.5, num_classes=10)
READERS = {  # file name -> (how it is read, the one error kind it may raise)
    "ck.pth": (lambda p: rg.load_checkpoint(MODEL, p), ValueError),
    "m.onnx": (lambda p: (rg.deploy.count_onnx_ops(p), rg.deploy.onnx_session(p)), OnnxFileError),
    "d.npz": (lambda p: rg.load_dataset("npz", p), DataError),
}


@pytest.mark.parametrize("name", sorted(READERS))
@SETTINGS
@given(content=GARBAGE)
def test_garbage_file(tmp_path, name, content):
    read, error = READERS[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error) as err:
        read(path)
    assert_one_line(err.value)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("imgs")
    for split in ("train", "val"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(root / split / c / "0.png")
    return root


@SETTINGS
@given(content=GARBAGE, ext=st.sampled_from(["jpg", "png", "JPEG", "webp"]))
def test_garbage_image(folder, content, ext):
    bad = folder / "val" / "b" / f"bad.{ext}"
    bad.write_bytes(content)
    try:
        bundle = rg.load_dataset("imagefolder", folder)
    except DataError as err:
        assert_one_line(err)
        assert str(bad) in str(err)
    else:  # the bytes happened to be a valid image (e.g. a 1x1 PPM header): then it must really decode
        assert len(bundle.test) == 3 and torch.is_tensor(bundle.test[2][0])
    finally:
        bad.unlink()
