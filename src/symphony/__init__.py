"""Symphony: the backend daemon of an AI-first development environment."""

__all__ = ["__version__"]

__version__ = "0.1.0"
