#!/usr/bin/env bash
# Release cross-build of the Lambda functions for arm64 (provided.al2023), as zip files, with cargo-lambda
# (installed with zig into .venv-lambda on first use): every function of infra/template.yaml. Prints each
# zip's size and fails when one reaches 5 MB (5,000,000 bytes), the budget docs/deploy.md records sizes
# against. Several minutes cold. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-lambda
if ! { [ -x "$venv/bin/cargo-lambda" ] && "$venv/bin/python" -c "import yaml" 2>/dev/null; }; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check cargo-lambda ziglang pyyaml
fi
export PATH="$PWD/$venv/bin:$PATH"
mapfile -t functions < <("$venv/bin/python" infra/lambda_settings.py binaries)
bins=()
for f in "${functions[@]}"; do bins+=(--bin "$f"); done
cargo lambda build --release --arm64 --output-format zip "${bins[@]}"
target="${CARGO_TARGET_DIR:-target}"
budget=5000000
over=0
for f in "${functions[@]}"; do
  size=$(stat -c %s "$target/lambda/$f/bootstrap.zip")
  awk -v f="$f" -v s="$size" 'BEGIN { printf "%-10s %9d bytes  %.2f MB\n", f, s, s / 1e6 }'
  [ "$size" -lt "$budget" ] || { echo "infra/build-lambda.sh: $f's zip is over the 5 MB budget" >&2; over=1; }
done
exit "$over"
