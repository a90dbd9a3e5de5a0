"""driftloop: keep a model good in production."""

__version__ = "0.1.0"
