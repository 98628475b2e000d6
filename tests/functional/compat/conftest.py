"""The compat shapes of tests/unit/compat (fixtures/), for the compat tests on the applied stack."""

from tests.unit.compat.conftest import fixture  # noqa: F401  (a pytest fixture, registered by import)
