"""The project's one error type for bad input (config, data, weights, checkpoints, output folder).

A `UserError` is a mistake the user can fix, not a bug: its message names the file or key, what is
wrong and how to fix it. The command-line entry points run under `exit_on_user_error`, which prints
it as one paragraph without a traceback and exits with status 2 (`EXIT_USER_ERROR`, the status
argparse uses for a bad command line; in-process callers catch a `ReportedUserError`, which is also
a UserError); `--debug` or `DPT_DEBUG=1` adds the traceback. A full disk is reported the same way:
an OSError ENOSPC / EDQUOT, or torch.save's failure to write (a RuntimeError from its stream writer,
with no errno). Bugs keep their traceback.
"""

import contextlib
import errno
import os
import re
import shutil
import sys
import traceback

EXIT_USER_ERROR = 2
DEBUG_ENV = "DPT_DEBUG"
DISK_FULL_ERRNOS = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))  # no EDQUOT on Windows
# What torch.save's C++ stream writer says when a write fails (full disk or quota): no errno reaches Python.
TORCH_WRITE_FAILURES = ("PytorchStreamWriter failed writing", "inline_container.cc", "iostream error")


class UserError(Exception):
    """Bad input; the message says what is wrong, where (file or config key) and how to fix it."""


class ReportedUserError(SystemExit, UserError):
    """What an entry point raises once it has printed a UserError: the process exits with status 2
    (it is a SystemExit), and an in-process caller (a test, a notebook) can still catch it as the
    UserError it reports, with the same message."""

    def __init__(self, message):
        super().__init__(message)
        self.code = EXIT_USER_ERROR


def debug_requested(flag=False):
    """True when the traceback of a user error should be shown (`--debug` or DPT_DEBUG set, not 0)."""
    return flag or os.environ.get(DEBUG_ENV, "0") not in ("", "0")


def add_debug_argument(parser):
    """The `--debug` flag of every entry point."""
    parser.add_argument(
        "--debug", action="store_true", help=f"show the traceback of input errors (or set {DEBUG_ENV}=1)"
    )


def is_write_failure(error):
    """True for a full disk: an OSError ENOSPC / EDQUOT, or torch.save's stream-writer RuntimeError."""
    if isinstance(error, OSError):
        return error.errno in DISK_FULL_ERRNOS
    if isinstance(error, RuntimeError):
        messages = (str(error), str(error.__context__ or ""))
        return any(failure in message for failure in TORCH_WRITE_FAILURES for message in messages)
    return False


def free_space(folder):
    """' (N MiB free)' for the disk of `folder` (or of its nearest existing parent), '' when unknown."""
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        return f" ({shutil.disk_usage(folder or '.').free / 2**20:,.1f} MiB free)"
    except OSError:
        return ""


def disk_full_error(error, folder=""):
    """The UserError for a failed write on a full disk (or quota), naming the file or folder."""
    if isinstance(error, OSError):
        what = f"The disk is full ({os.strerror(error.errno)})"
    else:
        what = "torch.save could not write its file, most likely because the disk is full,"
    where = f"writing {error.filename}" if getattr(error, "filename", None) else (
        f"writing to {folder}" if folder else "writing a file")
    fix = f"free space in {folder}{free_space(folder)} or choose another --output-dir" if folder else (
        "free space on that disk")
    return UserError(f"{what} while {where}: {fix}, then run again.")


@contextlib.contextmanager
def exit_on_user_error(debug=False, output_folder=""):
    """Turn a UserError (or a full disk while writing to `output_folder`) into one paragraph on
    stderr and exit status 2; with `debug` (or DPT_DEBUG=1) the traceback is printed first."""
    try:
        yield
    except Exception as error:
        if not isinstance(error, UserError):
            if not is_write_failure(error):
                raise
            error = disk_full_error(error, output_folder)
        if debug_requested(debug):
            traceback.print_exc()
        hint = "" if debug_requested(debug) else f" (--debug or {DEBUG_ENV}=1 shows the traceback)"
        message = message_of(error)
        print(f"Error: {message}{hint}", file=sys.stderr)
        raise ReportedUserError(message) from None


def message_of(error):
    """A UserError's message. One raised in a DataLoader worker process reaches the main process wrapped
    in the worker's traceback ("Caught UserError in DataLoader worker process 0. Original Traceback ...
    UserError: <message>"): the message is its last line."""
    text = str(error)
    wrapped = re.match(r"Caught \w+ in DataLoader worker process \d+\.\s.*^[\w.]*Error: (.*)\Z", text, re.S | re.M)
    return wrapped.group(1).strip() if wrapped else text
