"""Source snippets for testing the grader: correct variants, mutants, cheats and broken code.

Every entry is plain source text that the tests feed to :mod:`course_lib.grading.runner`
(as a ``{label: source}`` mapping, in notebook order), exactly as it would read the code cells of
a notebook. ``correct`` holds several different correct implementations per graded function
(different ways of drawing the same distribution); ``mutants`` the mistakes the grader must
catch, each with the words its failure message must contain; ``hostile`` cheats and broken code.
"""
