"""Placeholder: being written (see the module list in course_lib/__init__.py)."""

__all__: list[str] = []
