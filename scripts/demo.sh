#!/usr/bin/env bash
# The main job, locally, on what Terraform deploys: set up, build the Lambda
# packages, start a local AWS (moto with the project's patches), terraform apply
# an example to it (examples/complete by default), run the deployed functions as
# AWS does (localaws.runtime), put the CNM samples, generated notifications and
# poison pills on the stream and print what became of each record. No destroy by
# default (the local AWS is thrown away on exit); `--destroy` ends with one.
# The AWS provider comes from the Terraform registry when reachable, else from
# the offline mirror (built first when absent: 20-35 minutes, said up front).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python build.py >/dev/null
exec .venv/bin/python demo/demo.py "$@"
