"""Probability distributions used in scenarios.

A distribution appears in two roles:

* **user traits** (``segments[i].traits``): heterogeneity across users; every user draws
  their own value once, at the start of a run;
* **uncertain parameters** (any effect or population parameter written as a
  distribution instead of a number): one value per run, drawn from the run's seed, or
  sampled across runs by an ensemble (Monte Carlo or Latin hypercube via :meth:`ppf`).

Every distribution is given by intuitive parameters (mean and standard deviation of
the variable itself, not of its logarithm) and may be clipped to ``[low, high]``.

=============  ==========================  ===========================================
``dist``        parameters                  notes
=============  ==========================  ===========================================
normal         mean, sd                    symmetric; clip with low/high
lognormal      mean > 0, sd                positive, right-skewed (e.g. spend, need)
gamma          mean > 0, sd > 0            positive (e.g. churn proneness); sd > mean
                                           puts mass near 0 (near-immune customers)
beta           mean in (0, 1), sd;         in (0, 1) (affinities, churn probabilities);
               or shapes a > 0, b > 0      a < 1 puts mass near 0
uniform        low, high
triangular     low, mode, high
=============  ==========================  ===========================================
"""

from __future__ import annotations

from typing import Annotated, Literal, Protocol, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

__all__ = ["Dist", "DIST_KINDS", "Size", "value_mean", "sample_value"]

#: How many values to draw: None for one number, else the shape of an array.
type Size = int | tuple[int, ...] | None


class _Frozen(Protocol):
    """What the distributions use of a frozen scipy distribution (scipy has no type hints)."""

    def rvs(
        self, size: Size = ..., random_state: np.random.Generator | None = ...
    ) -> np.ndarray | float: ...

    def ppf(self, q: float | np.ndarray) -> np.ndarray | float: ...

    def mean(self) -> float: ...


class _DistBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    low: float | None = Field(None, description="Values below are clipped to this bound.")
    high: float | None = Field(None, description="Values above are clipped to this bound.")

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Self:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self

    # -- subclasses implement _frozen() (a scipy frozen distribution) or _draw()
    def _frozen(self) -> _Frozen:  # pragma: no cover - abstract
        raise NotImplementedError

    def _draw(self, rng: np.random.Generator, size: Size) -> np.ndarray | float:
        return self._frozen().rvs(size=size, random_state=rng)

    def _clip(self, x: np.ndarray | float) -> np.ndarray | float:
        if self.low is not None or self.high is not None:
            x = np.clip(x, self.low, self.high)
        return x

    def sample(self, rng: np.random.Generator, size: Size = None) -> np.ndarray | float:
        """Draw ``size`` values (clipped to ``[low, high]``) from ``rng``."""
        return self._clip(self._draw(rng, size))

    def ppf(self, u: float | np.ndarray) -> np.ndarray | float:
        """Quantile function: the value at cumulative probability ``u`` (clipped)."""
        return self._clip(self._frozen().ppf(u))

    @property
    def mean(self) -> float:
        """Mean of the unclipped distribution."""
        return float(self._frozen().mean())

    def clipped(self, low: float | None, high: float | None) -> Self:
        """Return a copy whose bounds are intersected with ``[low, high]``."""
        lo = low if self.low is None else (self.low if low is None else max(low, self.low))
        hi = high if self.high is None else (self.high if high is None else min(high, self.high))
        return self.model_copy(update={"low": lo, "high": hi})


class Normal(_DistBase):
    dist: Literal["normal"]
    mean_: float = Field(alias="mean", description="Mean.")
    sd: float = Field(ge=0, description="Standard deviation.")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def _frozen(self) -> _Frozen:
        return stats.norm(self.mean_, self.sd)

    def _draw(self, rng: np.random.Generator, size: Size) -> np.ndarray | float:
        return rng.normal(self.mean_, self.sd, size)


class LogNormal(_DistBase):
    dist: Literal["lognormal"]
    mean_: float = Field(alias="mean", gt=0, description="Mean of the variable (not its log).")
    sd: float = Field(ge=0, description="Standard deviation of the variable.")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def _log_params(self) -> tuple[float, float]:
        s2 = np.log1p((self.sd / self.mean_) ** 2)
        return np.log(self.mean_) - s2 / 2, np.sqrt(s2)

    def _frozen(self) -> _Frozen:
        mu, s = self._log_params()
        return stats.lognorm(s=max(s, 1e-300), scale=np.exp(mu))

    def _draw(self, rng: np.random.Generator, size: Size) -> np.ndarray | float:
        mu, s = self._log_params()
        return rng.lognormal(mu, s, size)


class Gamma(_DistBase):
    dist: Literal["gamma"]
    mean_: float = Field(alias="mean", gt=0, description="Mean.")
    sd: float = Field(gt=0, description="Standard deviation.")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def _shape_scale(self) -> tuple[float, float]:
        shape = (self.mean_ / self.sd) ** 2
        return shape, self.mean_ / shape

    def _frozen(self) -> _Frozen:
        k, theta = self._shape_scale()
        return stats.gamma(k, scale=theta)

    def _draw(self, rng: np.random.Generator, size: Size) -> np.ndarray | float:
        k, theta = self._shape_scale()
        return rng.gamma(k, theta, size)


class Beta(_DistBase):
    """Beta distribution, by its mean and sd or by its shapes ``a`` and ``b``.

    The shapes are the textbook parameters: mean a / (a + b); ``a < 1`` puts mass near 0
    (e.g. near-immune customers when it is a churn probability, as in the
    shifted-beta-geometric model).
    """

    dist: Literal["beta"]
    mean_: float | None = Field(None, alias="mean", gt=0, lt=1, description="Mean, in (0, 1).")
    sd: float | None = Field(
        None, gt=0, description="Standard deviation; sd^2 < mean * (1 - mean)."
    )
    a: float | None = Field(None, gt=0, description="First shape parameter (alpha), > 0.")
    b: float | None = Field(None, gt=0, description="Second shape parameter (beta), > 0.")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _feasible(self) -> Self:
        moments = (self.mean_ is not None, self.sd is not None)
        shapes = (self.a is not None, self.b is not None)
        if not (all(moments) and not any(shapes)) and not (all(shapes) and not any(moments)):
            raise ValueError("a beta distribution needs either mean and sd, or a and b")
        if self.mean_ is not None and self.sd is not None:
            if self.sd**2 >= self.mean_ * (1 - self.mean_):
                raise ValueError(
                    f"sd {self.sd} is too large for a beta distribution with mean "
                    f"{self.mean_} (need sd < {np.sqrt(self.mean_ * (1 - self.mean_)):.3g})"
                )
        return self

    def _ab(self) -> tuple[float, float]:
        if self.a is not None and self.b is not None:
            return self.a, self.b
        assert self.mean_ is not None and self.sd is not None
        m, v = self.mean_, self.sd**2
        c = m * (1 - m) / v - 1
        return m * c, (1 - m) * c

    def _frozen(self) -> _Frozen:
        a, b = self._ab()
        return stats.beta(a, b)

    def _draw(self, rng: np.random.Generator, size: Size) -> np.ndarray | float:
        a, b = self._ab()
        return rng.beta(a, b, size)


class Uniform(_DistBase):
    dist: Literal["uniform"]
    low: float = Field(description="Lower end.")
    high: float = Field(description="Upper end.")

    def _frozen(self) -> _Frozen:
        return stats.uniform(self.low, self.high - self.low)

    def _draw(self, rng: np.random.Generator, size: Size) -> np.ndarray | float:
        return rng.uniform(self.low, self.high, size)


class Triangular(_DistBase):
    dist: Literal["triangular"]
    low: float = Field(description="Lower end.")
    mode: float = Field(description="Most likely value.")
    high: float = Field(description="Upper end.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.low <= self.mode <= self.high or self.low == self.high:
            raise ValueError("triangular needs low <= mode <= high and low < high")
        return self

    def _frozen(self) -> _Frozen:
        width = self.high - self.low
        return stats.triang((self.mode - self.low) / width, loc=self.low, scale=width)

    def _draw(self, rng: np.random.Generator, size: Size) -> np.ndarray | float:
        return rng.triangular(self.low, self.mode, self.high, size)


Dist = Annotated[
    Normal | LogNormal | Gamma | Beta | Uniform | Triangular, Field(discriminator="dist")
]
DIST_KINDS = ("normal", "lognormal", "gamma", "beta", "uniform", "triangular")
DistTypes = (Normal, LogNormal, Gamma, Beta, Uniform, Triangular)


def value_mean(x: float | _DistBase) -> float:
    """Return the mean of a number-or-distribution."""
    return float(x.mean) if isinstance(x, _DistBase) else float(x)


def sample_value(
    x: float | _DistBase, rng: np.random.Generator, size: Size = None
) -> np.ndarray | float:
    """Draw from a number-or-distribution (a number is returned as a constant array)."""
    if isinstance(x, _DistBase):
        return x.sample(rng, size)
    return np.full(size, float(x)) if size is not None else float(x)
