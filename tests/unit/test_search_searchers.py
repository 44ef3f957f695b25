"""Tests for the Searcher interface, BasicVariantGenerator, ConcurrencyLimiter and
SearchGenerator (what the driver calls), without Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tune_ckpt.search import (
    BasicVariantGenerator,
    ConcurrencyLimiter,
    Searcher,
    SearcherStateError,
    SearchGenerator,
    choice,
    generate_configs,
    grid_search,
    randint,
    sample_from,
    uniform,
)

SPACE = {
    "g": grid_search([1, 2, 3]),
    "u": uniform(0, 1),
    "nested": {"c": choice(["a", "b"]), "r": randint(0, 10**6)},
    "const": [1, 2],
}


def _drain(searcher: Searcher, prefix: str = "t") -> list[Any]:
    out = []
    while True:
        config = searcher.suggest(f"{prefix}{len(out)}")
        if config == Searcher.FINISHED:
            return out
        out.append(config)


def _bvg(num_samples: int, **kwargs: Any) -> BasicVariantGenerator:
    searcher = BasicVariantGenerator(**kwargs)
    assert searcher.set_search_properties(None, None, SPACE, num_samples=num_samples)
    return searcher


def test_basic_variant_generator_equals_generate_configs() -> None:
    """With the same seed, the generator suggests exactly generate_configs' list, then
    FINISHED."""
    assert _drain(_bvg(4, random_state=9)) == generate_configs(SPACE, num_samples=4, seed=9)
    assert _bvg(4).total_samples == 12


def test_basic_variant_generator_state_resumes_mid_sweep() -> None:
    """get_state after some suggestions, JSON round-tripped into a fresh generator, gives
    the same remaining configs as the uninterrupted one."""
    whole = _drain(_bvg(3, random_state=1))
    first = _bvg(3, random_state=1)
    head = [first.suggest(f"t{i}") for i in range(4)]
    state = json.loads(json.dumps(first.get_state()))
    second = _bvg(3)  # unseeded: the state carries the random generator
    second.set_state(state)
    assert head + _drain(second, "u") == whole


def test_points_to_evaluate_come_first_and_take_samples() -> None:
    """Preset points (partial, nested) run first, each expanding the grids it does not fix
    and taking one of num_samples; an unknown key is refused."""
    points = [{"g": 2, "nested": {"c": "b"}}, {"u": 0.5}]
    configs = _drain(_bvg(3, points_to_evaluate=points, random_state=0))
    assert len(configs) == 1 + 3 + 3
    assert configs[0]["g"] == 2 and configs[0]["nested"]["c"] == "b"
    assert [c["u"] for c in configs[1:4]] == [0.5, 0.5, 0.5]
    assert [c["g"] for c in configs[1:4]] == [1, 2, 3]
    with pytest.raises(ValueError, match=r"points_to_evaluate\[0\] key config\['nope'\]"):
        _bvg(1, points_to_evaluate=[{"nope": 1}])


def test_basic_variant_max_concurrent_waits_for_completions() -> None:
    """max_concurrent=2: a third suggestion waits (None) until a trial completes."""
    searcher = _bvg(2, max_concurrent=2)
    assert searcher.suggest("a") is not None and searcher.suggest("b") is not None
    assert searcher.suggest("c") is None
    searcher.on_trial_complete("a", {"x": 1})
    assert isinstance(searcher.suggest("c"), dict)
    assert searcher.suggest("d") is None


class _Recorder(Searcher):
    """A minimal user searcher: counts suggestions, records completions."""

    def __init__(self, limit: int = 100) -> None:
        super().__init__(metric="loss", mode="min")
        self.limit = limit
        self.count = 0
        self.completed: list[tuple[str, Any, bool]] = []

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.count >= self.limit:
            return Searcher.FINISHED
        self.count += 1
        return {"x": self.count}

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.completed.append((trial_id, result, error))

    def get_state(self) -> dict[str, Any]:
        return {"count": self.count, "completed": self.completed}

    def set_state(self, state: dict[str, Any]) -> None:
        self.count = state["count"]
        self.completed = [tuple(c) for c in state["completed"]]  # type: ignore[misc]


def test_concurrency_limiter_holds_back_until_completions() -> None:
    """At the limit, suggest returns None without asking the wrapped searcher."""
    inner = _Recorder()
    limiter = ConcurrencyLimiter(inner, max_concurrent=2)
    assert limiter.suggest("a") == {"x": 1} and limiter.suggest("b") == {"x": 2}
    assert limiter.suggest("c") is None and inner.count == 2
    limiter.on_trial_complete("a", {"loss": 1.0})
    assert inner.completed == [("a", {"loss": 1.0}, False)]
    assert limiter.suggest("c") == {"x": 3}
    assert limiter.suggest("d") is None
    with pytest.raises(ValueError, match="already suggested"):
        limiter.suggest("b")


def test_concurrency_limiter_batch_reports_the_whole_batch_at_once() -> None:
    """batch=True: the wrapped searcher hears of completions only when all of the batch
    completed, and the next batch starts only then."""
    inner = _Recorder()
    limiter = ConcurrencyLimiter(inner, max_concurrent=2, batch=True)
    limiter.suggest("a"), limiter.suggest("b")
    limiter.on_trial_complete("a", {"loss": 1.0})
    assert inner.completed == [] and limiter.suggest("c") is None
    limiter.on_trial_complete("b", None, error=True)
    assert inner.completed == [("a", {"loss": 1.0}, False), ("b", None, True)]
    assert limiter.suggest("c") == {"x": 3}


def test_concurrency_limiter_state_round_trip() -> None:
    """The limiter's live trials and cached batch, with the inner state, survive JSON."""
    limiter = ConcurrencyLimiter(_Recorder(), max_concurrent=2, batch=True)
    limiter.suggest("a"), limiter.suggest("b")
    limiter.on_trial_complete("a", {"loss": float("nan")})
    state = json.loads(json.dumps(limiter.get_state()))
    inner = _Recorder()
    restored = ConcurrencyLimiter(inner, max_concurrent=2, batch=True)
    restored.set_state(state)
    assert restored.suggest("c") is None
    restored.on_trial_complete("b", {"loss": 2.0})
    assert [c[0] for c in inner.completed] == ["a", "b"] and inner.count == 2
    assert restored.suggest("c") == {"x": 3}


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: ConcurrencyLimiter(_Recorder(), 0), "max_concurrent=0"),
        (lambda: ConcurrencyLimiter("x", 1), "searcher='x'"),  # type: ignore[arg-type]
        (lambda: BasicVariantGenerator(max_concurrent=-1), "max_concurrent=-1"),
        (lambda: BasicVariantGenerator(random_state="s"), "random_state='s'"),  # type: ignore[arg-type]
        (lambda: Searcher(metric="a", mode="minimize"), "mode='minimize'"),
        (lambda: Searcher(metric=["a", "b"], mode=["min"]), "same length"),
        (lambda: SearchGenerator(None, {}, num_samples=0), "num_samples=0"),
    ],
)
def test_bad_arguments(make: Any, needle: str) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        make()
    assert needle in str(info.value)


def test_search_generator_basic_is_todays_expansion() -> None:
    """Without a searcher, the generator hands out generate_configs' configs in order and
    then is finished."""
    generator = SearchGenerator(BasicVariantGenerator(random_state=5), SPACE, num_samples=2)
    configs = []
    while not generator.is_finished():
        config = generator.next_config(f"t{len(configs)}")
        if config is not None:
            configs.append(config)
    assert configs == generate_configs(SPACE, num_samples=2, seed=5)
    assert generator.next_config("late") is None


def test_search_generator_counts_samples_and_merges_constants() -> None:
    """A searcher with its own space: num_samples limits the trials, every config carries
    the param_space's constants, and a domain in the param_space is refused."""
    generator = SearchGenerator(_Recorder(), {"lr": 0.1, "nested": {"k": (1, 2)}}, num_samples=3)
    configs = [generator.next_config(f"t{i}") for i in range(4)]
    assert configs[:3] == [{"lr": 0.1, "nested": {"k": (1, 2)}, "x": i} for i in (1, 2, 3)]
    assert configs[3] is None and generator.is_finished()
    with pytest.raises(ValueError, match=r"param_space\['lr'\] is a search-space entry"):
        SearchGenerator(_Recorder(), {"lr": uniform(0, 1)})


def test_search_generator_finished_searcher_and_state() -> None:
    """FINISHED from the searcher ends the generator; its state (and the searcher's) comes
    back after a JSON round trip into a new generator."""
    generator = SearchGenerator(_Recorder(limit=2), {}, num_samples=5)
    generator.next_config("a")
    generator.on_trial_complete("a", {"loss": 3.0})
    state = json.loads(json.dumps(generator.get_state()))
    resumed = SearchGenerator(_Recorder(limit=2), {}, num_samples=5)
    resumed.set_state(state)
    assert resumed.num_suggested == 1
    assert resumed.next_config("b") == {"x": 2}
    assert resumed.next_config("c") is None and resumed.is_finished()
    assert resumed.searcher.completed == [("a", {"loss": 3.0}, False)]  # type: ignore[attr-defined]
    other = SearchGenerator(None, {}, num_samples=1)
    with pytest.raises(SearcherStateError, match="_Recorder"):
        other.set_state(state)


class _SaveOnly(_Recorder):
    """A Ray-style searcher that implements save/restore (a file) but not get_state."""

    def get_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(str(self.count))

    def restore(self, checkpoint_path: str) -> None:
        self.count = int(Path(checkpoint_path).read_text())


def test_search_generator_uses_save_and_restore_of_ray_style_searchers() -> None:
    generator = SearchGenerator(_SaveOnly(), {}, num_samples=5)
    generator.next_config("a"), generator.next_config("b")
    state = json.loads(json.dumps(generator.get_state()))
    resumed = SearchGenerator(_SaveOnly(), {}, num_samples=5)
    resumed.set_state(state)
    assert resumed.next_config("c") == {"x": 3}


def test_searcher_save_restore_file(tmp_path: Path) -> None:
    """Searcher.save writes get_state as JSON; restore reads it; garbage is a clear error."""
    searcher = _bvg(2, random_state=3)
    searcher.suggest("a")
    searcher.save(str(tmp_path / "state.json"))
    restored = _bvg(2)
    restored.restore(str(tmp_path / "state.json"))
    assert _drain(restored) == _drain(searcher)
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(SearcherStateError, match="not a saved searcher state"):
        restored.restore(str(tmp_path / "bad.json"))
    with pytest.raises(SearcherStateError, match="version 99"):
        restored.set_state({**searcher.get_state(), "version": 99})


def test_sample_from_with_basic_variant_generator() -> None:
    """sample_from resolves through the generator as through generate_configs."""
    space = {"a": randint(1, 5), "b": sample_from(lambda spec: spec.config.a * 10)}
    generator = SearchGenerator(None, space, num_samples=5)
    configs = [generator.next_config(str(i)) for i in range(5)]
    assert all(c is not None and c["b"] == 10 * c["a"] for c in configs)


def test_importing_search_does_not_import_optuna() -> None:
    """tune_ckpt.search stays light: optuna is imported only by tune_ckpt.search.optuna."""
    code = "import sys, tune_ckpt.search; assert 'optuna' not in sys.modules, 'optuna'"
    subprocess.run([sys.executable, "-c", code], check=True)
