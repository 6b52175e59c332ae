"""Broken and hostile submissions for the grading tests and the grading benchmark.

``cases`` builds them from the solution notebook (by function name, so they follow the notebook
as it evolves); ``course`` builds a scratch nbgrader course outside the repository and grades it.
"""
