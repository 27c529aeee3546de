"""Shared utilities every app may use: logging context, redaction, security helpers, database types.

This package imports no app of the project.
"""
