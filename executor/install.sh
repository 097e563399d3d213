#!/usr/bin/env bash
# Builds ci-slurm in release mode and installs the four executor executables, ci-local,
# ci-gen, ci-worker (the jobs' payloads: install to a PREFIX the compute nodes see), and an
# example settings file. Run from the repository root:
#   executor/install.sh [PREFIX]          (default PREFIX=/usr/local)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
swift build -c release --product ci-config
swift build -c release --product ci-prepare
swift build -c release --product ci-run
swift build -c release --product ci-cleanup
swift build -c release --product ci-local
swift build -c release --product ci-gen
swift build -c release --product ci-worker   # needs liblapacke-dev libopenblas-dev libsqlite3-dev
bin=$(swift build -c release --show-bin-path)
install -d "$prefix/bin"
for tool in ci-config ci-prepare ci-run ci-cleanup ci-local ci-gen ci-worker; do
  install -m 0755 "$bin/$tool" "$prefix/bin/$tool"
done
if [ -w /etc ] && [ ! -e /etc/ci-slurm/settings.toml ]; then
  install -d /etc/ci-slurm
  install -m 0644 executor/settings.example.toml /etc/ci-slurm/settings.toml
  echo "installed /etc/ci-slurm/settings.toml (edit data_root to a shared file system)"
fi
echo "installed to $prefix/bin; merge executor/config.toml.example into gitlab-runner's config.toml"
