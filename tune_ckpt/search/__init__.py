"""Search spaces and search algorithms (Ray Tune's ``ray.tune.search``).

``tune_ckpt.search.optuna.OptunaSearch`` needs the ``optuna`` extra; importing this package
does not import optuna.
"""

from tune_ckpt.search.basic_variant import BasicVariantGenerator
from tune_ckpt.search.concurrency_limiter import ConcurrencyLimiter
from tune_ckpt.search.sample import (
    Choice,
    Domain,
    Function,
    LogRandInt,
    LogUniform,
    Normal,
    QLogRandInt,
    QLogUniform,
    QNormal,
    QRandInt,
    QUniform,
    RandInt,
    Uniform,
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
from tune_ckpt.search.search_generator import SearchGenerator
from tune_ckpt.search.searcher import Searcher, SearcherStateError
from tune_ckpt.search.variant_generator import count_variants, generate_configs

__all__ = [
    "BasicVariantGenerator",
    "Choice",
    "ConcurrencyLimiter",
    "Domain",
    "Function",
    "LogRandInt",
    "LogUniform",
    "Normal",
    "QLogRandInt",
    "QLogUniform",
    "QNormal",
    "QRandInt",
    "QUniform",
    "RandInt",
    "SearchGenerator",
    "Searcher",
    "SearcherStateError",
    "Uniform",
    "choice",
    "count_variants",
    "generate_configs",
    "grid_search",
    "lograndint",
    "loguniform",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "sample_from",
    "uniform",
]
