"""backforge: render, update and prove FastAPI backends from the Copier template in this repo."""

__version__ = "0.1.0"
