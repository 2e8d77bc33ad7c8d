"""The error of materialization, shared by the writer's modules."""


class MaterializationError(RuntimeError):
    """Materialization cannot proceed (unsupported definition, Redis error)."""
