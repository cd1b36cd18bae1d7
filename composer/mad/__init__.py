"""MAD synthetic tasks (numpy generators in `tasks`) and the proxy evaluator (`evaluate`, JAX)."""

from composer.mad import tasks
from composer.mad.tasks import *  # noqa: F403  (the package's public names are those of `tasks`)

__all__ = list(tasks.__all__)
