"""Build the files of the docs page "Time it on your device" (docs/device_lab/device.md).

    python docs/device_lab/build_assets.py [--out FOLDER] [--force]

The Sphinx build runs this (docs/_ext/repghost_book.py, ``builder-inited``) and copies the folder it writes
(default ``docs/device_lab/_site``, git-ignored) into the built site through ``html_extra_path``, so the page finds
everything under ``device_lab/`` next to ``device_lab/device.html``:

- ``device_lab.js`` and ``device_lab.css``: the page's one JS module and its style sheet (copied from here);
- ``assets/ort/``: onnxruntime-web's plain WebAssembly build (``ort.wasm.min.mjs`` and the SIMD wasm it loads, no
  WebGPU/WebGL bundles), copied from ``node_modules`` (``npm ci --prefix docs/device_lab`` installs the pinned
  version of package-lock.json; after that no network is needed);
- ``assets/models/``: ONNX files (opset 18, batch 1, 224 px, :func:`repghost_mini.export_onnx`) of RepGhostNet
  fused, the *same* network in its training form, and GhostNet, at widths 0.5x and 1.0x; random weights with
  randomized BN statistics (:func:`repghost_mini.randomize_bn_stats_`): latency does not depend on the values;
  and the shipped CIFAR-10 reference model (:func:`repghost_mini.training.load_reference_model`, fused);
- ``assets/images/``: 8 CIFAR-10 test images (the first of each of 8 classes of ``cifar10-subset``) as PNG;
- ``assets/manifest.json``: what the page reads -- the model files per width, the paper's Table 3 latencies and
  their ratio (from :mod:`repghost_mini.paper`, never retyped), the reference model's preprocessing (its card's
  mean, std, image size) and class names, the images and their labels.

Exporting takes a while, so the models, images and manifest are rebuilt only when what they are made from changed
(this script, the library files they depend on, torch/onnx versions, the data folder): a hash of those is stored
in the manifest (``build_key``). ``--force`` rebuilds anyway.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "_site"
SITE_DIR = "device_lab"                 # where the page's files sit in the built site (the page is device_lab/device)
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")  # MIT header inside
PAGE_FILES = ("device_lab.js", "device_lab.css")
WIDTHS = {"0.5": "050", "1.0": "100"}
IMAGE_SIZE = 224
N_IMAGES = 8
#: library files the exported models, images and manifest depend on (globs relative to the installed package)
KEY_SOURCES = ("core/*.py", "deploy/export.py", "paper.py", "training/card.py", "training/checkpoints.py",
               "training/registry.py", "weights/*")
NO_NODE_MODULES = ("docs/device_lab/node_modules/onnxruntime-web is missing: run `npm ci --prefix docs/device_lab` "
                   "once (it installs the pinned onnxruntime-web of docs/device_lab/package-lock.json), then build "
                   "the docs again.")


class AssetError(RuntimeError):
    """Something the page needs cannot be built; the message says what to do."""


def ort_dist() -> Path:
    return HERE / "node_modules" / "onnxruntime-web" / "dist"


def ort_version() -> str:
    package = HERE / "node_modules" / "onnxruntime-web" / "package.json"
    if not package.is_file():
        raise AssetError(NO_NODE_MODULES)
    return json.loads(package.read_text())["version"]


def _copy_if_changed(src: Path, dest: Path) -> None:
    if not src.is_file():
        raise AssetError(f"{src} is missing" + (f": {NO_NODE_MODULES}" if "node_modules" in src.parts else "."))
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.is_file() or dest.stat().st_size != src.stat().st_size or dest.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dest)


def copy_runtime_and_page(site: Path) -> None:
    """onnxruntime-web's WASM files and the page's JS/CSS: cheap, copied on every build (only changed bytes)."""
    ort_version()  # a clear sentence if node_modules is missing
    for name in ORT_FILES:
        _copy_if_changed(ort_dist() / name, site / "assets" / "ort" / name)
    for name in PAGE_FILES:
        _copy_if_changed(HERE / name, site / name)


def build_key() -> str:
    import onnx
    import torch

    import repghost_mini

    package = Path(repghost_mini.__file__).resolve().parent
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    for pattern in KEY_SOURCES:
        for path in sorted(package.glob(pattern)):
            if path.is_file():
                h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    h.update(f"torch={torch.__version__} onnx={onnx.__version__} lib={repghost_mini.__version__}".encode())
    data = os.environ.get("REPGHOST_MINI_DATA", "")
    h.update(f"data={data}".encode())
    return h.hexdigest()


def export_timing_models(models_dir: Path) -> dict:
    """Per width: RepGhostNet fused, the same network unfused (training form), GhostNet -- ONNX, batch 1, 224 px."""
    import torch

    import repghost_mini as rg

    out = {}
    for width, tag in WIDTHS.items():
        torch.manual_seed(0)
        unfused = rg.randomize_bn_stats_(rg.build_model(f"repghostnet_{tag}"), seed=0).eval()
        fused = rg.reparameterize(unfused)  # a deep copy: the same function, its branches folded
        ghost = rg.randomize_bn_stats_(rg.build_model(f"ghostnet_{tag}"), seed=1).eval()
        files = {}
        for key, model, stem in (("fused", fused, f"repghostnet_{tag}_fused"),
                                 ("unfused", unfused, f"repghostnet_{tag}_training_form"),
                                 ("ghostnet", ghost, f"ghostnet_{tag}")):
            path = rg.export_onnx(model, models_dir / f"{stem}.onnx", (1, 3, IMAGE_SIZE, IMAGE_SIZE),
                                  dynamic_batch=False)
            files[key] = {"file": f"assets/models/{path.name}", "bytes": path.stat().st_size,
                          "params": rg.count_params(model)}
        out[width] = files
    return out


def paper_numbers() -> dict:
    """Table 3's phone latencies (MNN, ARM, one thread, batch 1) and RepGhostNet/GhostNet per width, from
    repghost_mini.paper (the quotes), plus the sentences that say how they were measured."""
    from repghost_mini import paper

    out = {"widths": {}, "how": " ".join(paper.quote(k) for k in ("latency.mnn", "latency.batch", "latency.runs"))}
    for width in WIDTHS:
        rep, ghost = paper.table3("repghostnet", float(width)), paper.table3("ghostnet", float(width))
        out["widths"][width] = {"repghostnet_ms": rep["latency_ms"], "ghostnet_ms": ghost["latency_ms"],
                                "ratio": round(rep["latency_ms"] / ghost["latency_ms"], 2),
                                "where": "Table 3"}
    return out


def export_classifier(models_dir: Path, images_dir: Path) -> dict:
    """The shipped CIFAR-10 reference model (fused) as ONNX, its card's preprocessing, and 8 test images as PNG."""
    from PIL import Image

    import repghost_mini as rg
    from repghost_mini.training import load_reference_model

    model = load_reference_model("cifar10")
    card = model.card
    path = rg.export_onnx(model, models_dir / "cifar10_reference.onnx")
    data = rg.load_dataset("cifar10-subset", test_per_class=1, download=False)
    images_dir.mkdir(parents=True, exist_ok=True)
    for old in images_dir.glob("*.png"):
        old.unlink()
    images = []
    for index in range(min(N_IMAGES, len(data.test))):
        image, label = data.test[index]
        name = f"{index}_{data.class_names[label]}.png"
        Image.fromarray(image.permute(1, 2, 0).numpy(), "RGB").save(images_dir / name)
        images.append({"file": f"assets/images/{name}", "label": int(label), "class": data.class_names[label]})
    return {"file": f"assets/models/{path.name}", "bytes": path.stat().st_size, "model": card.options.model,
            "top1": card.top1, "top1_split": card.top1_split, "image_size": card.image_size,
            "mean": list(card.mean), "std": list(card.std), "class_names": list(card.class_names),
            "images": images, "data_set": data.name}


def build(out: Path = DEFAULT_OUT, force: bool = False, log=print) -> Path:
    """Write the page's files under ``out/device_lab`` and return ``out``."""
    import repghost_mini

    site = Path(out) / SITE_DIR
    copy_runtime_and_page(site)
    assets = site / "assets"
    key, manifest_file = build_key(), assets / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    if not force and manifest.get("build_key") == key:
        files = [m["file"] for w in manifest["widths"].values() for m in w.values()] + \
                [manifest["classifier"]["file"]] + [i["file"] for i in manifest["classifier"]["images"]]
        if all((site / f).is_file() for f in files):
            log("device_lab: models, images and manifest up to date")
            return Path(out)
    log("device_lab: exporting the ONNX models, images and manifest of the device page ...")
    models_dir = assets / "models"
    if models_dir.is_dir():
        shutil.rmtree(models_dir)
    models_dir.mkdir(parents=True)
    try:
        classifier = export_classifier(models_dir, assets / "images")
    except FileNotFoundError as err:  # the offline data: one sentence, not a traceback in the docs build
        raise AssetError(f"the device page ships CIFAR-10 test images from the data set 'cifar10-subset', which "
                         f"was not found ({str(err).splitlines()[0]}): set REPGHOST_MINI_DATA to the data folder "
                         "(see data/README.md) and build the docs again.") from None
    manifest = {
        "library_version": repghost_mini.__version__,
        "onnxruntime_web": ort_version(),
        "image_size": IMAGE_SIZE,
        "default_width": "0.5",
        "widths": export_timing_models(models_dir),
        "paper": paper_numbers(),
        "classifier": classifier,
        "build_key": key,
    }
    manifest_file.write_text(json.dumps(manifest, indent=1) + "\n")
    return Path(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="export the models again even if up to date")
    args = parser.parse_args(argv)
    try:
        build(args.out, args.force)
    except AssetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
