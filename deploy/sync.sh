#!/bin/sh
# Refresh what the cluster runs from the repository: deploy/runbooks/ (runbooks/*.yaml without their
# rehearsal tests, whose scenarios stay in the repo) and deploy/rbac.yaml (least privilege for exactly
# those runbooks). Run from the repository root after changing a runbook; `make test` fails until you do.
# Extra arguments go to `runbook rbac`, e.g. --config deploy/config.yaml or --target-namespace billing.
set -eu
RUNBOOK="${RUNBOOK:-runbook}"
for path in deploy/runbooks/*.yaml; do
  name="$(basename "$path")"
  {
    echo "# Deployed copy of runbooks/$name without its rehearsal tests (their scenarios stay in the repo)."
    echo "# Update with deploy/sync.sh (also regenerates deploy/rbac.yaml); do not edit here."
    sed -e '/^tests:/,$d' -e '/^# yaml-language-server/d' "runbooks/$name"
  } > "$path"
done
"$RUNBOOK" rbac deploy/runbooks --namespace runbook --service-account runbook "$@" > deploy/rbac.yaml
echo "deploy/runbooks/ and deploy/rbac.yaml are up to date"
