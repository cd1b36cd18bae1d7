"""Looking at a finished (or running) search: tables, figures, the HTML report and exports.

pandas, pyarrow and matplotlib only: nothing here imports JAX, Optuna or Ray, so a notebook or a
laptop without an accelerator stack can read any run folder.
"""
