#!/usr/bin/env bash
# deploy/prometheus/rules.yml: promtool accepts the rules and their unit tests
# pass; and the unit tests are not vacuous: a copy of the rules with the
# capacity ratio computed over active loops instead of max_loops (the mistake
# the ratio exists to avoid) fails them.
set -euo pipefail
source_dir="$1"
rules="$source_dir/deploy/prometheus"
promtool check rules "$rules/rules.yml"
(cd "$rules" && promtool test rules rules_test.yml)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$rules/rules_test.yml" "$work/"
sed 's/sum by (job, instance) (loopscale_pool_max_loops)$/sum by (job, instance) (loopscale_pool_active_loops)/' \
    "$rules/rules.yml" >"$work/rules.yml"
if cmp -s "$rules/rules.yml" "$work/rules.yml"; then
  echo "FAIL: the broken copy is not broken (rules.yml changed?)" >&2
  exit 1
fi
if (cd "$work" && promtool test rules rules_test.yml >"$work/out" 2>&1); then
  echo "FAIL: the rule tests pass on a broken copy of the rules" >&2
  exit 1
fi
grep -q "instance:loopscale_capacity:ratio" "$work/out" || { cat "$work/out" >&2; exit 1; }
echo "ok: rules check and test; a broken copy fails the capacity test"
