"""Proxies judged by published results of models trained at scale (docs/published.md).

``sets`` reads the shipped tables (``sets/*.json``), ``mapping`` maps a published layout to a proxy
depth with matched parameters, ``heuristics`` holds the rules of thumb a proxy must beat, ``stats``
the rank statistics and ceilings, ``judge`` runs a study (``composer fidelity --published``) and
``report`` writes it.
"""
