"""The ``composer`` command line: the top floor, the only place that imports ``search`` and ``scaling``
together with the core (``cli/main.py`` dispatches to ``cli/commands/<name>.py``)."""
