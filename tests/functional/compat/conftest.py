"""The compat shapes of tests/unit/compat (fixtures/) and the ingest-side moto world, for the compat tests on moto."""

from tests.functional.ingest.conftest import fresh_config_cache, pipeline  # noqa: F401 (fixtures)
from tests.unit.compat.conftest import fixture  # noqa: F401  (a pytest fixture, registered by import)
