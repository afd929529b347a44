#!/usr/bin/env bash
# Lint the AWS layer: `terraform fmt -check`, checkov, and the HCL assertion tests.
#
# checkov runs from its own virtualenv (CHECKOV_VENV, default .venv-checkov, created here if
# missing): it depends on bc-python-hcl2, which installs a module named `hcl2` that replaces
# python-hcl2's, which the HCL tests use. The only accepted checkov findings are the
# `#checkov:skip=CKV_...:reason` comments in terraform/aws/*.tf.
#
# `terraform init/validate` need providers from the registry; they run only when the providers
# are already present (TERRAFORM_VALIDATE=1 forces them, e.g. on a machine with registry access).
#
# Environment: PYTHON (interpreter with the project and its dev extras; default .venv/bin/python,
# else python3), CHECKOV_VENV, CHECKOV_VERSION, TERRAFORM (default: terraform on PATH).
set -euo pipefail

cd "$(dirname "$0")/.."
TERRAFORM=${TERRAFORM:-$(command -v terraform || echo /usr/local/bin/terraform)}
CHECKOV_VENV=${CHECKOV_VENV:-.venv-checkov}
CHECKOV_VERSION=${CHECKOV_VERSION:-3.3.30}
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

step() { printf '\n== %s\n' "$*"; }

step "terraform fmt -check"
"$TERRAFORM" fmt -check -recursive -diff terraform/

if [[ ${TERRAFORM_VALIDATE:-} == 1 || -d terraform/aws/.terraform/providers ]]; then
  step "terraform init + validate"
  "$TERRAFORM" -chdir=terraform/aws init -backend=false -input=false >/dev/null
  "$TERRAFORM" -chdir=terraform/aws validate
else
  step "terraform validate: skipped (no providers here; run with TERRAFORM_VALIDATE=1 where the registry is reachable)"
fi

step "checkov (${CHECKOV_VENV})"
if [[ ! -x $CHECKOV_VENV/bin/checkov ]]; then
  python3 -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/pip" install --quiet "checkov==${CHECKOV_VERSION}"
fi
# PYTHONPATH is dropped so the project's python-hcl2 cannot shadow checkov's own hcl2.
# --skip-download: no calls to the vendor's API (guidelines, policies); offline and reproducible.
env -u PYTHONPATH "$CHECKOV_VENV/bin/checkov" --directory terraform/ --framework terraform --compact --quiet \
  --skip-download

step "HCL assertions (tests/test_terraform.py, tests/test_terraform_ops.py)"
PYTHONPATH=generator${PYTHONPATH:+:$PYTHONPATH} "$PYTHON" -m pytest -q -p no:cacheprovider \
  tests/test_terraform.py tests/test_terraform_ops.py

step "terraform lint: all passed"
