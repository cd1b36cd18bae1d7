"""The six MAD synthetic tasks (docs/mad_tasks.md), as seeded, vectorised numpy generators."""

from composer.mad.tasks._task_base import IGNORE, TaskBatch
from composer.mad.tasks.compression import CompressionConfig
from composer.mad.tasks.fuzzy_in_context_recall import FuzzyInContextRecallConfig
from composer.mad.tasks.in_context_recall import InContextRecallConfig
from composer.mad.tasks.memorization import MemorizationConfig, fact_table
from composer.mad.tasks.noisy_in_context_recall import NoisyInContextRecallConfig
from composer.mad.tasks.registry import TASKS, TaskConfig, TaskSpec, generate, generate_split, spec_for
from composer.mad.tasks.selective_copying import SelectiveCopyingConfig
from composer.mad.tasks.task_settings import (
    CAPACITY_SETTINGS,
    CAPACITY_STEPS,
    CPU_BATCH_SIZE,
    CPU_NUM_TEST,
    CPU_SETTINGS,
    CPU_STEPS,
    PAPER_SETTINGS,
    PAPER_SWEEPS,
)

__all__ = ["CAPACITY_SETTINGS", "CAPACITY_STEPS", "CPU_BATCH_SIZE", "CPU_NUM_TEST", "CPU_SETTINGS", "CPU_STEPS",
           "IGNORE",
           "PAPER_SETTINGS", "PAPER_SWEEPS", "TASKS", "CompressionConfig",
           "FuzzyInContextRecallConfig", "InContextRecallConfig", "MemorizationConfig",
           "NoisyInContextRecallConfig", "SelectiveCopyingConfig", "TaskBatch", "TaskConfig",
           "TaskSpec", "fact_table", "generate", "generate_split", "spec_for"]
