#!/usr/bin/env bash
# Release cross-build of the Lambda functions for arm64 (provided.al2023), as zip files, with cargo-lambda
# (installed with zig into .venv-lambda on first use). Prints each zip's size. Several minutes cold.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-lambda/bin/cargo-lambda ]; then
  python3 -m venv .venv-lambda
  .venv-lambda/bin/pip install --quiet --disable-pip-version-check cargo-lambda ziglang
fi
export PATH="$PWD/.venv-lambda/bin:$PATH"
cargo lambda build --release --arm64 --output-format zip -p users -p groups -p discovery -p bulk
for f in users groups discovery bulk; do
  printf '%-10s %s bytes\n' "$f" "$(stat -c %s "target/lambda/$f/bootstrap.zip")"
done
