"""Secrets out of messages: every URL shown to a person goes through ``mask_url``.

A Redis, broker or database URL may hold a password; a webhook URL's path is
itself the secret. Errors, logs and CLI output print the masked form.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MASK = "***"
# scheme:// then anything up to whitespace, a quote or punctuation around it
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>(),;]+")
# Where the path names a database, a socket or a vhost. Any other URL's path
# is masked too: a webhook URL carries its token there.
_PLAIN_PATH_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "amqp",
    "amqps",
    "pyamqp",
    "postgresql",
    "postgres",
    "sqlite",
    "mysql",
)


def mask_url(url: str) -> str:
    """``url`` with its password (and, unless it names a data store, its path and query)
    replaced by ***."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        scheme = url.split("://", 1)[0]
        return f"{scheme}://{MASK}"
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    if parts.username is not None or parts.password is not None:
        user = parts.username or ""
        netloc = f"{user}:{MASK}@{netloc}" if parts.password is not None else f"{user}@{netloc}"
    path, query = parts.path, parts.query
    plain = parts.scheme.lower().split("+")[0] in _PLAIN_PATH_SCHEMES
    if not plain and (path.strip("/") or query):
        path, query = f"/{MASK}", ""
    return f"{parts.scheme}://{netloc}{path}" + (f"?{query}" if query else "")


def _masked(match: re.Match[str]) -> str:
    found = match.group(0)
    url = found.rstrip(".:!?")  # the sentence's punctuation, not the URL's
    return mask_url(url) + found[len(url) :]


def mask_urls(text: str) -> str:
    """``text`` with every URL in it masked."""
    return _URL.sub(_masked, text)
