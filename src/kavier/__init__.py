"""Kavier: cache-aware discrete-event simulation of LLM inference ecosystems."""

__version__ = "0.1.0"
