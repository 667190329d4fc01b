"""The Ishigami function as a sweep model (importable, so picklable for workers)."""

import math

A, B = 7.0, 0.1


def ishigami(params, seed):
    x1, x2, x3 = params["x1"], params["x2"], params["x3"]
    return {"y": math.sin(x1) + A * math.sin(x2) ** 2 + B * x3**4 * math.sin(x1)}


def analytic_indices():
    """First- and total-order Sobol indices of Ishigami (Saltelli et al. 2008)."""
    v1 = 0.5 * (1 + B * math.pi**4 / 5) ** 2
    v2 = A**2 / 8
    v13 = B**2 * math.pi**8 * (1 / 18 - 1 / 50)
    var = v1 + v2 + v13
    s1 = [v1 / var, v2 / var, 0.0]
    st = [(v1 + v13) / var, v2 / var, v13 / var]
    return s1, st
