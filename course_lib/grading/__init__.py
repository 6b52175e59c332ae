"""Grading helpers used by the hidden tests of the nbgrader assignments."""

__all__: list[str] = []
