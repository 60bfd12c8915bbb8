"""`dpt_models.errors` under its former name: code written against `dassl_compat.errors` keeps working
(the same classes and functions, not copies)."""
from dpt_models.errors import (  # noqa: F401
    DEBUG_ENV,
    EXIT_USER_ERROR,
    ReportedUserError,
    UserError,
    add_debug_argument,
    debug_requested,
    disk_full_error,
    exit_on_user_error,
    is_write_failure,
    message_of,
)
