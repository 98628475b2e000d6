"""A Lambda function's cold start: the cyclic garbage collector paused while its handler module imports.

Every handler module imports this module first (``import cnm_ingest.coldstart``,
before any other import; ruff's isort keeps it there, see pyproject.toml) and
calls :func:`done` on its last line. Importing boto3, Powertools and this
package allocates hundreds of thousands of objects that live as long as the
process, and the collector would walk them again and again while they load,
freeing next to nothing: pausing it takes about a tenth off a handler's import
time (``bench/cold_start.py``). :func:`done` then moves everything imported
out of the collector's generations (``gc.freeze``), so later full collections
(frequent in a consumer creating a few thousand objects per batch) do not walk
it either, and resumes collecting.
"""

from __future__ import annotations

import gc

_resume = gc.isenabled()
gc.disable()


def done() -> None:
    """The handler module is imported: freeze what it imported and resume collecting."""
    gc.freeze()
    if _resume:
        gc.enable()
