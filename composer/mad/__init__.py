"""MAD synthetic tasks (numpy generators in `tasks`) and the proxy evaluator (`evaluate`, JAX)."""

from composer.mad.tasks import (
    CPU_BATCH_SIZE,
    CPU_NUM_TEST,
    CPU_SETTINGS,
    CPU_STEPS,
    IGNORE,
    PAPER_SETTINGS,
    PAPER_SWEEPS,
    TASKS,
    CompressionConfig,
    FuzzyInContextRecallConfig,
    InContextRecallConfig,
    MemorizationConfig,
    NoisyInContextRecallConfig,
    SelectiveCopyingConfig,
    TaskBatch,
    TaskConfig,
    TaskSpec,
    fact_table,
    generate,
    generate_split,
    spec_for,
)

__all__ = ["CPU_BATCH_SIZE", "CPU_NUM_TEST", "CPU_SETTINGS", "CPU_STEPS", "IGNORE",
           "PAPER_SETTINGS", "PAPER_SWEEPS", "TASKS", "CompressionConfig",
           "FuzzyInContextRecallConfig", "InContextRecallConfig", "MemorizationConfig",
           "NoisyInContextRecallConfig", "SelectiveCopyingConfig", "TaskBatch", "TaskConfig",
           "TaskSpec", "fact_table", "generate", "generate_split", "spec_for"]
