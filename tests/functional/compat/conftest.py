"""The moto world of the ingest-side handlers (tests/ingest/conftest.py), reused as is."""

from tests.ingest.conftest import fresh_config_cache, pipeline  # noqa: F401 (fixtures)
