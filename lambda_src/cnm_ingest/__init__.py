"""Shared code for the cnm-ingest Lambda handlers.

Everything a handler needs from AWS goes through :mod:`cnm_ingest.aws`, so the
same code runs against AWS, moto in tests, or a local emulator when
``AWS_ENDPOINT_URL`` is set.
"""

__version__ = "0.1.0"
