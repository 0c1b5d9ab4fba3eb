"""Kernel support vector machines (SVC, NuSVC, SVR, NuSVR), as libsvm predicts.

libsvm keeps one binary machine per pair of classes (i, j), i < j: its decision is the kernel
against the support vectors of both classes times their coefficients, minus rho. It labels a
row by one-vs-one votes (decision > 0 votes i, else j; the first class with the most votes
wins); ``predict_proba`` (probability=True) turns each pair's decision into a pairwise
probability with its Platt sigmoid (clipped to [1e-7, 1 - 1e-7]) and couples them with libsvm's
iterative method (Wu, Lin and Weng), even for two classes, replayed here operation for operation
so its stopping test sees the same numbers. scikit-learn keeps libsvm's own coefficients in
``_dual_coef_``/``_intercept_``; the public ones are negated for two classes, and so is
``decision_function``. Precomputed and callable kernels are not compiled.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.svm import SVC, SVR, NuSVC, NuSVR

from ..tiles import whole_tiles
from .program import Estimator, Transform, Unsupported, compiles

MIN_PROBABILITY = 1e-7  # libsvm's clip of each pairwise probability
KERNEL_CELLS = 1 << 19  # rows x support vectors computed at once: bounds a large batch's memory


@compiles(SVC, NuSVC)
def support_vector_classifier(model: Any) -> Estimator:
    n_classes = len(model.classes_)
    kernel = kernel_function(model)
    pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
    pair_coefficients = _pair_coefficients(model, pairs)
    rho = -np.asarray(model._intercept_, dtype="float64")

    def pairwise(features: np.ndarray) -> np.ndarray:
        """libsvm's decision values, (rows, pairs)."""
        return kernel(features) @ pair_coefficients - rho
    pairwise = _in_chunks(pairwise, len(pair_coefficients))

    if n_classes == 2:
        def decision(features: np.ndarray) -> np.ndarray:
            return -pairwise(features)[:, 0]

        def winners(features: np.ndarray) -> np.ndarray:
            return (~(pairwise(features)[:, 0] > 0)).astype(np.intp)
    else:
        votes_for_i = _pair_matrix(pairs, n_classes, 1.0, 0.0)
        votes_for_j = _pair_matrix(pairs, n_classes, 0.0, 1.0)
        confidence_sums = _pair_matrix(pairs, n_classes, -1.0, 1.0)
        ovr = model.decision_function_shape == "ovr"

        def decision(features: np.ndarray) -> np.ndarray:
            """decision_function: for "ovr", scikit-learn's _ovr_decision_function(values < 0,
            -values): votes (a pair (i, j) votes j where its decision is < 0, else i) plus the
            summed confidences squashed into (-1/3, 1/3)."""
            values = pairwise(features)
            if not ovr:
                return values
            toward_j = values < 0
            votes = (~toward_j) @ votes_for_i + toward_j @ votes_for_j
            sums = -values @ confidence_sums
            return votes + sums / (3 * (np.abs(sums) + 1))

        if model.break_ties and ovr:
            def winners(features: np.ndarray) -> np.ndarray:
                return decision(features).argmax(axis=1)
        else:
            def winners(features: np.ndarray) -> np.ndarray:
                positive = pairwise(features) > 0
                votes = positive @ votes_for_i + (~positive) @ votes_for_j
                return votes.argmax(axis=1)  # the first class with the most votes, as libsvm

    probabilities = None
    if hasattr(model, "predict_proba"):  # probability=True
        probabilities = _coupled_probabilities(model, pairwise, pairs, n_classes)
    kind = "svm" if type(model) is SVC else "nu-svm"
    return Estimator(kind=kind, probabilities=probabilities, winners=winners, decision=decision)


@compiles(SVR, NuSVR)
def support_vector_regressor(model: Any) -> Estimator:
    kernel = kernel_function(model)
    coefficients = _dense(model._dual_coef_)[0]
    rho = -float(np.asarray(model._intercept_)[0])
    values = _in_chunks(lambda features: kernel(features) @ coefficients - rho, len(coefficients))
    return Estimator(kind="svr" if type(model) is SVR else "nu-svr", values=values)


def _in_chunks(function: Transform, n_vectors: int) -> Transform:
    """``function`` over a large batch a chunk of rows at a time, so that the kernel matrix of a
    chunk (rows x support vectors) stays a few megabytes."""
    chunk = whole_tiles(KERNEL_CELLS // max(1, n_vectors))  # app/model/tiles.py

    def chunked(features: np.ndarray) -> np.ndarray:
        if len(features) <= chunk:
            return function(features)
        return np.concatenate([function(features[i:i + chunk]) for i in range(0, len(features), chunk)])
    return chunked


def kernel_function(model: Any) -> Transform:
    """features -> (rows, support vectors) kernel values, as libsvm's k_function."""
    kernel = model.kernel
    if callable(kernel) or kernel == "precomputed":
        raise Unsupported("an SVM with a precomputed or callable kernel")
    vectors = np.ascontiguousarray(_dense(model.support_vectors_), dtype="float64")
    vectors_t = np.ascontiguousarray(vectors.T)
    gamma, coef0, degree = float(model._gamma), float(model.coef0), int(model.degree)

    if kernel == "linear":
        return lambda features: features @ vectors_t
    if kernel == "poly":
        return lambda features: _powi(gamma * (features @ vectors_t) + coef0, degree)
    if kernel == "sigmoid":
        return lambda features: np.tanh(gamma * (features @ vectors_t) + coef0)
    if kernel != "rbf":
        raise Unsupported(f"an SVM with kernel {kernel!r}")
    # exp(-gamma |x - v|^2) as |x|^2 + |v|^2 - 2 x.v (one matrix product); libsvm sums the
    # differences instead, which differs only by rounding.
    norms = np.einsum("ij,ij->i", vectors, vectors)
    minus_twice_vectors_t = -2.0 * vectors_t

    def rbf_block(features: np.ndarray) -> np.ndarray:
        squared = features @ minus_twice_vectors_t  # in place from here: temporaries cost page faults
        squared += np.einsum("ij,ij->i", features, features)[:, None]
        squared += norms
        np.maximum(squared, 0.0, out=squared)
        squared *= -gamma
        return np.exp(squared, out=squared)

    return rbf_block


def _powi(base: np.ndarray, times: int) -> np.ndarray:
    """libsvm's powi: power by repeated squaring, so it rounds as libsvm does."""
    result = np.ones_like(base)
    power = base
    while times > 0:
        if times % 2 == 1:
            result = result * power
        power = power * power
        times //= 2
    return result


def _pair_coefficients(model: Any, pairs: list[tuple[int, int]]) -> np.ndarray:
    """(support vectors, pairs): pair (i, j) weighs class i's vectors by row j - 1 of libsvm's
    coefficients and class j's by row i, and every other vector by 0."""
    dual = _dense(model._dual_coef_)
    counts = np.asarray(model._n_support, dtype=np.intp)
    starts = np.concatenate([[0], np.cumsum(counts)])
    out = np.zeros((dual.shape[1], len(pairs)))
    for p, (i, j) in enumerate(pairs):
        out[starts[i]:starts[i + 1], p] = dual[j - 1, starts[i]:starts[i + 1]]
        out[starts[j]:starts[j + 1], p] = dual[i, starts[j]:starts[j + 1]]
    return out


def _pair_matrix(pairs: list[tuple[int, int]], n_classes: int, to_i: float, to_j: float) -> np.ndarray:
    """(pairs, classes): what each pair (i, j) adds to class i and to class j."""
    matrix = np.zeros((len(pairs), n_classes))
    for p, (i, j) in enumerate(pairs):
        matrix[p, i], matrix[p, j] = to_i, to_j
    return matrix


# ---- probabilities ----------------------------------------------------------------------------
def _coupled_probabilities(model: Any, pairwise: Transform, pairs: list[tuple[int, int]], n_classes: int) -> Transform:
    a = np.asarray(model._probA, dtype="float64")
    b = np.asarray(model._probB, dtype="float64")
    if len(a) != len(pairs) or len(b) != len(pairs):
        raise Unsupported("an SVM without one Platt sigmoid per pair of classes")
    a_list, b_list = a.tolist(), b.tolist()

    def probabilities(features: np.ndarray) -> np.ndarray:
        values = pairwise(features)
        if len(values) <= SCALAR_ROWS:  # few rows: plain floats beat NumPy's per-call cost
            return np.array([_couple_one(row, a_list, b_list, pairs, n_classes) for row in values.tolist()])
        return _couple(_pairwise_probabilities(values, a, b), pairs, n_classes)
    return probabilities


SCALAR_ROWS = 16


def _sigmoid_one(value: float, a: float, b: float) -> float:
    f = value * a + b
    if f >= 0:
        e = math.exp(-f)  # the C library's exp, as libsvm calls it
        return e / (1.0 + e)
    return 1.0 / (1 + math.exp(f))


def _couple_one(values: list[float], a: list[float], b: list[float], pairs: list[tuple[int, int]], k: int) -> list[float]:
    """libsvm's svm_predict_probability for one row, in plain floats (IEEE doubles, as in C)."""
    r = [[0.0] * k for _ in range(k)]
    for p, (i, j) in enumerate(pairs):
        probability = min(max(_sigmoid_one(values[p], a[p], b[p]), MIN_PROBABILITY), 1 - MIN_PROBABILITY)
        r[i][j] = probability
        r[j][i] = 1 - probability
    return _multiclass_probability_one(k, r)


def _multiclass_probability_one(k: int, r: list[list[float]]) -> list[float]:
    """libsvm's multiclass_probability (Wu, Lin and Weng's method 2), line for line."""
    max_iter = max(100, k)
    eps = 0.005 / k
    p = [1.0 / k] * k
    Q = [[0.0] * k for _ in range(k)]
    for t in range(k):
        Q[t][t] = 0.0
        for j in range(t):
            Q[t][t] += r[j][t] * r[j][t]
            Q[t][j] = Q[j][t]
        for j in range(t + 1, k):
            Q[t][t] += r[j][t] * r[j][t]
            Q[t][j] = -r[j][t] * r[t][j]
    Qp = [0.0] * k
    for _ in range(max_iter):
        pQp = 0.0
        for t in range(k):
            Qp[t] = 0.0
            for j in range(k):
                Qp[t] += Q[t][j] * p[j]
            pQp += p[t] * Qp[t]
        max_error = 0.0
        for t in range(k):
            error = abs(Qp[t] - pQp)
            if error > max_error:
                max_error = error
        if max_error < eps:
            break
        for t in range(k):
            diff = (-Qp[t] + pQp) / Q[t][t]
            p[t] += diff
            pQp = (pQp + diff * (diff * Q[t][t] + 2 * Qp[t])) / (1 + diff) / (1 + diff)
            for j in range(k):
                Qp[j] = (Qp[j] + diff * Q[t][j]) / (1 + diff)
                p[j] /= (1 + diff)
    return p


def _pairwise_probabilities(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """libsvm's sigmoid_predict, clipped to [1e-7, 1 - 1e-7]: (rows, pairs)."""
    f = values * a + b
    e = np.exp(-np.abs(f))  # exp(-f) where f >= 0, exp(f) where f < 0: never overflows
    probability = np.where(f >= 0, e / (1.0 + e), 1.0 / (1 + e))
    return np.minimum(np.maximum(probability, MIN_PROBABILITY), 1 - MIN_PROBABILITY)


def _couple(pairwise: np.ndarray, pairs: list[tuple[int, int]], k: int) -> np.ndarray:
    """_multiclass_probability_one for many rows at once: each row stops at its own iteration."""
    n = len(pairwise)
    r = [[None] * k for _ in range(k)]
    for p, (i, j) in enumerate(pairs):
        r[i][j] = pairwise[:, p]
        r[j][i] = 1 - pairwise[:, p]
    Q = [[None] * k for _ in range(k)]
    for t in range(k):
        diagonal = np.zeros(n)
        for j in range(k):
            if j != t:
                diagonal = diagonal + r[j][t] * r[j][t]
        Q[t][t] = diagonal
        for j in range(t):
            Q[t][j] = Q[j][t]
        for j in range(t + 1, k):
            Q[t][j] = -r[j][t] * r[t][j]
    p = [np.full(n, 1.0 / k) for _ in range(k)]
    out = np.empty((n, k))
    active = np.arange(n)
    eps = 0.005 / k
    for _ in range(max(100, k)):
        Qp = []
        pQp = np.zeros(len(active))
        for t in range(k):
            total = np.zeros(len(active))
            for j in range(k):
                total = total + Q[t][j] * p[j]
            Qp.append(total)
            pQp = pQp + p[t] * total
        max_error = np.zeros(len(active))
        for t in range(k):
            max_error = np.maximum(max_error, np.abs(Qp[t] - pQp))
        done = max_error < eps
        if done.any():
            out[active[done]] = np.column_stack([p_t[done] for p_t in p])
            going = ~done
            active = active[going]
            if not len(active):
                return out
            Q = [[q[going] for q in row] for row in Q]
            p = [p_t[going] for p_t in p]
            Qp = [q[going] for q in Qp]
            pQp = pQp[going]
        for t in range(k):
            diff = (-Qp[t] + pQp) / Q[t][t]
            p[t] = p[t] + diff
            pQp = (pQp + diff * (diff * Q[t][t] + 2 * Qp[t])) / (1 + diff) / (1 + diff)
            for j in range(k):
                Qp[j] = (Qp[j] + diff * Q[t][j]) / (1 + diff)
                p[j] = p[j] / (1 + diff)
    out[active] = np.column_stack(p)  # max_iter reached, as libsvm returns then
    return out


def _dense(values: Any) -> np.ndarray:
    return values.toarray() if sparse.issparse(values) else np.asarray(values, dtype="float64")
