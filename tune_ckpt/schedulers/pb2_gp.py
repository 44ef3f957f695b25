"""PB2's bandit: a time-varying Gaussian process on reward changes, and a batch GP-UCB step.

From Parker-Holder, Nguyen and Roberts, "Provably Efficient Online Hyperparameter
Optimization with Population-Based Bandits" (NeurIPS 2020). Each observation is one trial's
stretch between two perturbation points with unchanged hyperparameters: its features are
the time at its end, the reward at its start and the hyperparameters; its target is the
reward change per unit of time. The kernel multiplies a squared exponential on (reward,
hyperparameters) with a forgetting factor ``(1 - epsilon) ** (|t - t'| / 2)`` on time
(Bogunovic et al., time-varying GP-UCB), so old observations count less. A new point
maximises ``mean + kappa * std`` at the cloned trial's (time, reward); points already
chosen in the same round lower the standard deviation where they are (Desautels et al.,
batch UCB), so one round does not pick the same point twice.

Imported only when PB2 explores: it needs numpy, scipy and scikit-learn (the ``pb2`` extra).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel
from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

MAX_POINTS = 200
"""The newest reward changes the GP is fitted on (its cost grows with their cube)."""

_RANDOM_CANDIDATES = 512
_LOCAL_STARTS = 1  # a local search from the best candidate: the rest is cheaper sampling


@dataclass(frozen=True)
class Observation:
    """A trial at a perturbation point: its hyperparameters then, and its reward (higher
    is better)."""

    trial_id: str
    time: float
    values: tuple[float, ...]
    reward: float


class TimeVaryingKernel(Kernel):
    """``variance * exp(-|x - x'|^2 / (2 lengthscale^2)) * (1 - epsilon) ** (|t - t'| / 2)``
    with the time in column 0 of the features and the rest in ``x``."""

    def __init__(
        self,
        variance: float = 1.0,
        lengthscale: float = 1.0,
        epsilon: float = 0.1,
        variance_bounds: tuple[float, float] = (1e-5, 1e5),
        lengthscale_bounds: tuple[float, float] = (1e-3, 1e3),
        epsilon_bounds: tuple[float, float] = (1e-5, 0.5),
    ) -> None:
        # sklearn's get_params reads the constructor's arguments back as attributes.
        self.variance = variance
        self.lengthscale = lengthscale
        self.epsilon = epsilon
        self.variance_bounds = variance_bounds
        self.lengthscale_bounds = lengthscale_bounds
        self.epsilon_bounds = epsilon_bounds

    @property
    def hyperparameter_variance(self) -> Hyperparameter:
        return Hyperparameter("variance", "numeric", self.variance_bounds)

    @property
    def hyperparameter_lengthscale(self) -> Hyperparameter:
        return Hyperparameter("lengthscale", "numeric", self.lengthscale_bounds)

    @property
    def hyperparameter_epsilon(self) -> Hyperparameter:
        return Hyperparameter("epsilon", "numeric", self.epsilon_bounds)

    def __call__(
        self, X: np.ndarray, Y: np.ndarray | None = None, eval_gradient: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        X = np.atleast_2d(X)
        Y = X if Y is None else np.atleast_2d(Y)
        half_dt = np.abs(X[:, :1] - Y[:, :1].T) / 2.0
        squared = ((X[:, None, 1:] - Y[None, :, 1:]) ** 2).sum(axis=-1)
        length2 = self.lengthscale**2
        K = self.variance * np.exp(-squared / (2.0 * length2)) * (1.0 - self.epsilon) ** half_dt
        if not eval_gradient:
            return K
        # Gradients with respect to the logarithms of the hyperparameters, in the order of
        # sklearn's theta: the hyperparameter_* properties sorted by name.
        d_epsilon = -K * half_dt * self.epsilon / (1.0 - self.epsilon)
        d_lengthscale = K * squared / length2
        d_variance = K
        return K, np.dstack([d_epsilon, d_lengthscale, d_variance])

    def diag(self, X: np.ndarray) -> np.ndarray:
        return np.full(np.atleast_2d(X).shape[0], float(self.variance))

    def is_stationary(self) -> bool:
        return False


def reward_changes(
    observations: Sequence[Observation],
) -> tuple[np.ndarray, np.ndarray]:
    """The GP's data: for each trial's consecutive observations with the same
    hyperparameters and a later time, features ``[time, reward before, *values]`` and the
    reward change per unit of time; the newest :data:`MAX_POINTS`, oldest first."""
    previous: dict[tuple[str, tuple[float, ...]], Observation] = {}
    rows: list[tuple[float, list[float], float]] = []
    for obs in sorted(observations, key=lambda o: o.time):
        key = (obs.trial_id, obs.values)
        before = previous.get(key)
        previous[key] = obs
        if before is None or obs.time <= before.time:
            continue
        change = (obs.reward - before.reward) / (obs.time - before.time)
        rows.append((obs.time, [obs.time, before.reward, *obs.values], change))
    rows = rows[-MAX_POINTS:]
    width = 2 + (len(observations[0].values) if observations else 0)
    X = np.array([r[1] for r in rows], dtype=float).reshape(len(rows), width)
    y = np.array([r[2] for r in rows], dtype=float)
    return X, y


def _scale(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    span = high - low
    return (values - low) / np.where(span > 0, span, 1.0)  # a constant column stays put


def _fit(X: np.ndarray, y: np.ndarray, kernel: Kernel, optimise: bool) -> GaussianProcessRegressor:
    gp = GaussianProcessRegressor(
        kernel=kernel,
        alpha=1e-4,  # jitter: reward changes are noisy and points may repeat
        optimizer="fmin_l_bfgs_b" if optimise else None,
        normalize_y=False,
    )
    with warnings.catch_warnings():  # a hyperparameter at its bound is not an error here
        warnings.simplefilter("ignore")
        gp.fit(X, y)
    return gp


def select_point(
    X: np.ndarray,
    y: np.ndarray,
    context: tuple[float, float],
    pending: Sequence[Sequence[float]],
    low: Sequence[float],
    high: Sequence[float],
    rng: np.random.Generator,
) -> np.ndarray:
    """The hyperparameters (within ``[low, high]``) maximising GP-UCB at ``context`` (a
    time and the reward at the start of the stretch ending then), given the data from
    :func:`reward_changes` and the points ``pending`` already chosen this round. Runs on
    one BLAS thread: the matrices are small, and threads cost several times the work on a
    busy machine."""
    with threadpool_limits(limits=1):
        return _select_point(X, y, context, pending, low, high, rng)


def _select_point(
    X: np.ndarray,
    y: np.ndarray,
    context: tuple[float, float],
    pending: Sequence[Sequence[float]],
    low: Sequence[float],
    high: Sequence[float],
    rng: np.random.Generator,
) -> np.ndarray:
    lows, highs = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    # Time and reward scaled by the data's range, hyperparameters by their bounds.
    fixed_low, fixed_high = X[:, :2].min(axis=0), X[:, :2].max(axis=0)
    features = np.hstack([_scale(X[:, :2], fixed_low, fixed_high), _scale(X[:, 2:], lows, highs)])
    spread = y.std()
    target = np.clip((y - y.mean()) / (spread if spread > 0 else 1.0), -2.0, 2.0)
    fixed = _scale(np.asarray(context, dtype=float), fixed_low, fixed_high)
    model = _fit(features, target, TimeVaryingKernel(), optimise=True)
    spread_model = model
    if len(pending):
        # Points chosen this round, at this context: their outcome is unknown, but a GP's
        # variance does not depend on targets, so zeros stand in for them.
        chosen = _scale(np.asarray(pending, dtype=float), lows, highs)
        extra = np.hstack([np.tile(fixed, (len(chosen), 1)), chosen])
        spread_model = _fit(
            np.vstack([features, extra]),
            np.concatenate([target, np.zeros(len(chosen))]),
            model.kernel_,
            optimise=False,
        )
    kappa = np.sqrt(0.2 + max(0.0, float(np.log(0.4 * len(target)))))

    def ucb(points: np.ndarray) -> np.ndarray:
        full = np.hstack([np.tile(fixed, (len(points), 1)), points])
        mean = model.predict(full)
        _, std = spread_model.predict(full, return_std=True)
        return np.asarray(mean + kappa * std)

    dims = len(lows)
    candidates = rng.uniform(0.0, 1.0, size=(_RANDOM_CANDIDATES, dims))
    scores = ucb(candidates)
    best_x, best_score = candidates[int(np.argmax(scores))], float(scores.max())
    for start in candidates[np.argsort(scores)[-_LOCAL_STARTS:]]:
        found = minimize(
            lambda x: -float(ucb(x.reshape(1, -1))[0]),
            start,
            bounds=[(0.0, 1.0)] * dims,
            method="L-BFGS-B",
            options={"maxiter": 20},
        )
        score = float(ucb(np.clip(found.x, 0.0, 1.0).reshape(1, -1))[0])
        if score > best_score:
            best_x, best_score = np.clip(found.x, 0.0, 1.0), score
    return np.clip(lows + best_x * (highs - lows), lows, highs)
