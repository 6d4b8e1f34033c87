"""Cognitive-state classification from biomarker features (linear discriminant analysis)."""

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class StateClassifier:
    """Linear discriminant analysis with a shrunk pooled covariance (Fisher 1936;
    Ledoit-Wolf-style shrinkage towards the scaled identity, fixed at `shrinkage`).

    **Fields:** `classes` (state names), `means` `(classes, features)`, `precision`
    `(features, features)`, `log_prior` `(classes,)`.
    """

    classes: tuple[str, ...]
    means: np.ndarray
    precision: np.ndarray
    log_prior: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, labels: np.ndarray, classes: Sequence[str], *,
            shrinkage: float = 0.1) -> "StateClassifier":
        """Fit on features `x (n, features)` and integer `labels (n,)` (-1 = unlabelled,
        ignored) naming `classes`.

        **Raises:** `ValueError` if a class has fewer than 2 labelled windows.
        """
        keep = labels >= 0
        x, labels = np.asarray(x, np.float64)[keep], np.asarray(labels)[keep]
        counts = np.bincount(labels, minlength=len(classes))
        if np.any(counts < 2):
            missing = [c for c, n in zip(classes, counts) if n < 2]
            raise ValueError(f"Too few training windows for states {missing}; record longer.")
        means = np.stack([x[labels == k].mean(0) for k in range(len(classes))])
        resid = x - means[labels]
        cov = resid.T @ resid / (len(x) - len(classes))
        target = np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
        cov = (1 - shrinkage) * cov + shrinkage * target
        return cls(tuple(classes), means, np.linalg.inv(cov), np.log(counts / counts.sum()))

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Discriminant scores `(n, classes)` (log posteriors up to a constant)."""
        x = np.asarray(x, np.float64)
        lin = x @ self.precision @ self.means.T
        quad = 0.5 * np.einsum("kf,fg,kg->k", self.means, self.precision, self.means)
        return lin - quad + self.log_prior

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most likely class index per row of `x (n, features)`."""
        return np.argmax(self.scores(x), axis=-1)


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """Counts `(n, n)`: row = true class, column = predicted; unlabelled (-1) rows ignored."""
    keep = truth >= 0
    m = np.zeros((n, n), dtype=int)
    np.add.at(m, (truth[keep], pred[keep]), 1)
    return m
