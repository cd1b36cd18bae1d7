"""Fidelity: does the proxy's ranking of layouts predict real language modelling? (docs/fidelity.md)."""
