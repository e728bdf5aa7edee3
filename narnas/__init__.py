"""What the engine's packages share: registries, typed configs, CLI plumbing and the
user-error base class. It imports none of ``spaces``, ``predictor`` or ``search``."""
