#!/bin/sh
# Refresh what the cluster runs from the repository: deploy/base/runbooks/ (runbooks/*.yaml without their
# rehearsal tests, whose scenarios stay in the repo) and deploy/base/rbac.yaml (least privilege for exactly
# those runbooks). Run from the repository root after changing a runbook; `make test` fails until you do.
# Extra arguments go to `runbook rbac`, e.g. --config deploy/base/config.yaml or --target-namespace billing.
set -eu
RUNBOOK="${RUNBOOK:-runbook}"
for path in deploy/base/runbooks/*.yaml; do
  name="$(basename "$path")"
  {
    echo "# Deployed copy of runbooks/$name without its rehearsal tests (their scenarios stay in the repo)."
    echo "# Update with deploy/sync.sh (also regenerates deploy/base/rbac.yaml); do not edit here."
    sed -e '/^tests:/,$d' -e '/^# yaml-language-server/d' "runbooks/$name"
  } > "$path"
done
"$RUNBOOK" rbac deploy/base/runbooks --namespace runbook --service-account runbook "$@" > deploy/base/rbac.yaml
echo "deploy/base/runbooks/ and deploy/base/rbac.yaml are up to date"
