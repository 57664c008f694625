"""Command-line front door of the W2SG f-divergence toolkit (``w2sg``)."""
__version__ = "0.1.0"
