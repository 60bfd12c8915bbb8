"""The project's one error type for bad input (config, data, weights, checkpoints, output folder).

A `UserError` is a mistake the user can fix, not a bug: its message names the file or key, what is
wrong and how to fix it. The command-line entry points print it as one paragraph without a
traceback; bugs keep their traceback.
"""


class UserError(Exception):
    """Bad input; the message says what is wrong, where (file or config key) and how to fix it."""
