"""Vuoro: self-service queue tickets, calls and signage for the citizens' house."""

__version__ = "0.1.0"
