"""The public API: ``import repghost_mini as rm`` exposes a curated set of names (the paper's concepts and the
user's verbs, pinned here); every other public name lives one attribute further, in its group, and resolves there."""
import ast
import re
from pathlib import Path

import repghost_mini as rm

#: the top level, pinned: a change here is a decision, not an accident.
TOP_LEVEL = """
core measure training deploy teaching paper
GhostModule RepGhostModule RepGhostInferenceModule GhostBottleneck RepGhostBottleneck GhostNet RepGhostNet ghostnet
repghostnet fold_bn fold_bn_into_conv reparameterize count_batchnorms randomize_bn_stats_ count_params count_macs
build_model available_models fuse_model load_dataset make_loaders TrainConfig train train_or_load evaluate ModelCard
ModelOptions load_checkpoint load export_run export_onnx quantize_model measure_latency compare_latency compare
UserError __version__
""".split()

PACKAGE = Path(rm.__file__).parent


def test_the_top_level_is_the_curated_api():
    assert sorted(rm.__all__) == sorted(TOP_LEVEL) and len(rm.__all__) <= 50
    assert [n for n in rm.__all__ if not hasattr(rm, n)] == []
    public = [n for n in vars(rm) if not n.startswith("_")]
    extra = sorted(set(public) - set(TOP_LEVEL) - {"cli", "errors", "files", "modes"})
    assert not extra, f"names at the top level that are not in the curated API: {extra}"
    assert callable(rm.train) and rm.train.__module__ == "repghost_mini.training.trainer"
    assert rm.compare is rm.measure.compare and rm.teaching.compare.__module__.endswith("exercises")


def test_every_group_lists_unique_names_that_resolve():
    for group in (rm.core, rm.measure, rm.training, rm.deploy, rm.teaching):
        assert len(group.__all__) == len(set(group.__all__)), f"{group.__name__} exports a name twice"
        assert [n for n in group.__all__ if not hasattr(group, n)] == []
    assert rm.__version__


def test_every_public_annotation_resolves():
    """The annotations of every exported function and class constructor name things that exist: under
    ``from __future__ import annotations`` a name that is never imported (``-> "torch.Tensor"`` in a module without
    ``torch``) only fails when something reads the hints (Sphinx, IDEs, ``typing.get_type_hints``)."""
    import inspect
    import typing

    unresolved = []
    for group in (rm, rm.core, rm.measure, rm.training, rm.deploy, rm.teaching):
        for name in group.__all__:
            obj = getattr(group, name)
            if inspect.ismodule(obj) or not callable(obj):
                continue
            try:
                typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj)
            except NameError as error:
                unresolved.append(f"{group.__name__}.{name}: {error}")
    assert not unresolved, unresolved


def _imported_modules(path: Path):
    """(level, absolute-or-relative module) of every import statement in ``path``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            yield node.level, node.module or ""
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield 0, alias.name


def test_core_imports_nothing_else_from_the_package():
    for path in sorted((PACKAGE / "core").glob("*.py")):
        for level, module in _imported_modules(path):
            assert level <= 1, f"{path.name} imports from outside core ({'.' * level}{module})"
            assert not (level == 0 and module.startswith("repghost_mini")), f"{path.name} imports {module}"


GROUPS = ["core", "measure", "training", "deploy", "teaching"]


def test_groups_import_only_downward():
    """core <- measure <- training <- deploy <- teaching: a group never imports a group listed after it (the
    bottom modules errors, files, modes and paper, which import nothing of ours but errors, are open to every group
    but the core)."""
    for rank, group in enumerate(GROUPS):
        for path in sorted((PACKAGE / group).glob("*.py")):
            for level, module in _imported_modules(path):
                if level == 2 and module:
                    target = module.split(".")[0]
                    allowed = GROUPS[:rank] + (["errors", "files", "modes", "paper"] if rank else [])
                    assert target in allowed, f"{group}/{path.name} imports upward from ..{module}"
    assert [m for _, m in _imported_modules(PACKAGE / "errors.py") if m.startswith(("repghost_mini", "."))] == []
    for bottom in ("files.py", "modes.py", "paper.py"):
        assert [m for _, m in _imported_modules(PACKAGE / bottom) if m.startswith(("repghost_mini", "."))] in \
            ([], ["errors"]), bottom


REFERENCE = re.compile(r"\brepghost_mini(?:\.[A-Za-z_]\w*)+")
ROOT = PACKAGE.parent


def _resolves(reference: str) -> bool:
    """Whether ``repghost_mini.a.b.c`` names a module or an attribute (a trailing method or field included)."""
    import importlib

    parts = reference.split(".")
    obj = rm
    for i, part in enumerate(parts[1:], start=1):
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        try:
            obj = importlib.import_module(".".join(parts[: i + 1]))
        except ImportError:
            return isinstance(obj, type) and part in getattr(obj, "__dataclass_fields__", {})
    return True


def test_every_dotted_reference_in_docstrings_readme_and_notebooks_resolves():
    texts = {str(p.relative_to(ROOT)): p.read_text() for p in sorted(PACKAGE.rglob("*.py"))}
    texts["README.md"] = (ROOT / "README.md").read_text()
    texts.update({str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "notebooks").glob("*.ipynb"))})
    broken = sorted({(name, ref) for name, text in texts.items() for ref in REFERENCE.findall(text)
                     if not _resolves(ref)})
    assert not broken, f"references that do not resolve: {broken[:20]}"
