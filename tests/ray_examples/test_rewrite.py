"""The import swap of the Ray Tune examples harness: what changes and what must not."""

from __future__ import annotations

import pytest

from . import EXAMPLES
from .rewrite import RewriteError, rewrite
from .runner import examples_dir


def test_imports_are_swapped_and_ray_core_stays():
    source = (
        b"import ray\n"
        b"from ray import tune\n"
        b"from ray.tune.schedulers import (\n    ASHAScheduler,\n)\n"
        b"from ray.train import Checkpoint, RunConfig\n"
        b"from ray.air import session  # AIR\n"
        b"ray.init(num_cpus=2)\n"
    )
    assert rewrite(source).source == (
        b"import ray\n"
        b"import tune_ckpt as tune\n"
        b"from tune_ckpt.schedulers import (\n    ASHAScheduler,\n)\n"
        b"from tune_ckpt import Checkpoint, RunConfig\n"
        b"from tune_ckpt.air import session  # AIR\n"
        b"ray.init(num_cpus=2)\n"
    )


def test_qualified_names_in_code_but_not_in_strings_or_comments():
    source = (
        b"import ray  # ray.tune here stays\n"
        b'def f(r: "ray.tune.Result"):\n'
        b"    ray.tune.report({'x': 1}, checkpoint=ray.train.Checkpoint.from_dict({}))\n"
        b"    return ray.get(ray.put(ray.air.session))\n"
    )
    assert rewrite(source).source == (
        b"import ray, tune_ckpt  # ray.tune here stays\n"
        b'def f(r: "ray.tune.Result"):\n'
        b"    tune_ckpt.report({'x': 1}, checkpoint=tune_ckpt.Checkpoint.from_dict({}))\n"
        b"    return ray.get(ray.put(tune_ckpt.air.session))\n"
    )


def test_a_sibling_example_is_imported_from_beside_it():
    result = rewrite(b"from ray.tune.examples.pbt_function import pbt_function\n")
    assert result.source == b"from pbt_function import pbt_function\n"
    assert result.siblings == ("pbt_function",)


@pytest.mark.parametrize(
    "source",
    [
        b"from ray.train import ScalingConfig\n",
        b"import ray\nray.train.torch.TorchTrainer\n",
        b"import ray\nray.tune.examples.mnist_pytorch.train_func()\n",
        b"from ray import serve\n",
    ],
)
def test_what_the_table_does_not_cover_is_refused(source):
    with pytest.raises(RewriteError):
        rewrite(source)


def test_non_ascii_text_before_a_name_keeps_the_offsets_right():
    source = "import ray\nx = 'é'; ray.tune.run(f)\n".encode()
    assert rewrite(source).source == "import ray, tune_ckpt\nx = 'é'; tune_ckpt.run(f)\n".encode()


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_covered_example_changes_in_import_lines_only(name):
    path = examples_dir() / f"{name}.py"
    assert path.is_file(), f"{path} is not installed"
    before = path.read_bytes()
    after = rewrite(before).source
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new)
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert changed, "nothing rewritten"
    for was, now in changed:
        assert was.lstrip().startswith((b"from ray", b"import ray")), was
        assert b"ray.tune" not in now and b"from ray import" not in now, now
