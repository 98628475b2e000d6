"""Write the CNM validators fastjsonschema generates into lambda_src/cnm_ingest/cnm/<kind>_validator.py.

    python tools/gen_validators.py           # (re)write them
    python tools/gen_validators.py --check   # exit 1 when one is not what the schema and fastjsonschema give

The Lambda functions import these modules instead of compiling the schema on
their first record (see ``cnm_ingest.cnm.validate``). Run this after changing the
bundled schema, ``validate.fast_notification_schema`` or the fastjsonschema pin.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambda_src"))

from cnm_ingest.cnm import validate  # noqa: E402

OUT = ROOT / "lambda_src" / "cnm_ingest" / "cnm"


def path_of(kind: str) -> Path:
    return OUT / f"{kind}_validator.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that the files are up to date")
    args = parser.parse_args(argv)
    stale = []
    for kind in validate.VALIDATOR_KINDS:
        text = validate.validator_source(kind)
        path = path_of(kind)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'} {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
