"""The command line (`kittylab`): flags, prompts and hints over the workspace; one module per task family."""

from .main import main

__all__ = ["main"]
