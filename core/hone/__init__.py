"""hone: evaluate and optimise transformer models, every component a plugin."""

__version__ = "0.1.0"
