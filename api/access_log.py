"""Access-log redaction: user ids in request paths are logged as their pseudonym, never raw.

uvicorn's access logger (``uvicorn.access``) writes the full path, so ``DELETE /v1/users/alice@example.com/data``
would put the very id being deleted into the log. :class:`UserPathRedactor` rewrites the path argument of each access
record to ``/v1/users/{pseudonym}/...`` (the keyed hash the feedback store uses, so an operator can still correlate a
request with stored rows). :func:`install` attaches it once per process-wide logger.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from urllib.parse import unquote

ACCESS_LOGGER = "uvicorn.access"
_USER_PATH = re.compile(r"(/v1/users/)([^/?#]+)")


class UserPathRedactor(logging.Filter):
    """Replaces the user id segment of ``/v1/users/{id}`` paths in access-log records with ``pseudonymize(id)``."""

    def __init__(self, pseudonymize: Callable[[str], str]) -> None:
        super().__init__(name="")
        self._pseudonymize = pseudonymize

    def redact(self, text: str) -> str:
        """``text`` with every ``/v1/users/{id}`` segment pseudonymised."""
        return _USER_PATH.sub(lambda m: m.group(1) + self._pseudonymize(unquote(m.group(2))), text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite string arguments (uvicorn passes the path as one) and the message; never drops a record."""
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str) and "/v1/users/" in record.msg:
            record.msg = self.redact(record.msg)
        return True


def install(pseudonymize: Callable[[str], str], *, logger_name: str = ACCESS_LOGGER) -> UserPathRedactor:
    """Attach a :class:`UserPathRedactor` to ``logger_name`` (replacing one installed earlier); returns it."""
    logger = logging.getLogger(logger_name)
    for old in [f for f in logger.filters if isinstance(f, UserPathRedactor)]:
        logger.removeFilter(old)
    redactor = UserPathRedactor(pseudonymize)
    logger.addFilter(redactor)
    return redactor
