"""nbgrader configuration: maps nbgrader's course directory onto this repository.

source = solutions/, release = exercises/ (committed). Submissions, the gradebook and
feedback live outside git (see .gitignore).
"""

c = get_config()  # type: ignore[name-defined]  # noqa: F821

c.CourseDirectory.root = "."
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
