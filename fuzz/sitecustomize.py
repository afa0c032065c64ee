"""Loaded by the Python that runs Schemathesis (scripts/schemathesis.sh puts fuzz/ on PYTHONPATH).

CPython 3.11.7's `ast` module is not safe to use from two threads at once: concurrent parses can
fail with `SystemError: AST constructor recursion depth mismatch` (CPython gh-106905). Hypothesis
parses lambda sources to describe strategies, and `st run --workers 2` runs tests in two threads,
so a run could fail now and then for no fault of the API. One lock around `ast.parse` makes the
parses take turns; they are rare and short.
"""

import ast
import threading

_parse = ast.parse
_lock = threading.Lock()


def _serialised_parse(*args, **kwargs):
    with _lock:
        return _parse(*args, **kwargs)


ast.parse = _serialised_parse
