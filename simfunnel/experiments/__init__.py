"""Experiments on the model: replications, comparisons, sweeps, backends and the store."""
