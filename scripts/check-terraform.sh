#!/usr/bin/env bash
# Static checks of terraform/: formatting, then checkov's security policies.
#
#   scripts/check-terraform.sh            # checks terraform/
#   TF_DIR=path/to/dir scripts/check-terraform.sh
#
# 1. `terraform fmt -check -recursive terraform` with the terraform on PATH; without one,
#    OpenTofu's identical `tofu fmt`, built once from its Go module into a cache folder
#    (no provider download: `validate` and `plan` need credentials and are out of scope).
# 2. checkov, pinned, run through uvx in its own environment: it is not a project
#    dependency because its requirements conflict with the lock.
# Exits non-zero on a formatting difference or on any failed checkov check. Deliberate
# exceptions are written next to the resource as #checkov:skip=<ID>:<reason>.
set -euo pipefail

CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
TOFU_VERSION="${TOFU_VERSION:-1.10.10}"
TOOLS_DIR="${FRAUD_TOOLS_DIR:-${HOME}/.cache/fraud-feature-store/tools}"
TF_DIR="${TF_DIR:-terraform}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

# `go install module/cmd@version` refuses modules whose go.mod has replace directives,
# which OpenTofu's has; so download the module and build inside it instead.
build_tofu() {
  local bin="$1"
  if ! command -v go >/dev/null 2>&1; then
    echo "check-terraform: neither terraform nor go is installed; install one of them" >&2
    exit 2
  fi
  echo "check-terraform: building OpenTofu ${TOFU_VERSION} into ${bin%/*} (once, a few minutes)"
  local module_dir
  module_dir="$(go mod download -json "github.com/opentofu/opentofu@v${TOFU_VERSION}" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [[ -z "${module_dir}" ]]; then
    echo "check-terraform: could not download github.com/opentofu/opentofu@v${TOFU_VERSION}" >&2
    exit 2
  fi
  mkdir -p "${bin%/*}"
  # dev=no: a release build, so `tofu version` reports the version without "-dev".
  (cd "${module_dir}" && GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath \
    -ldflags "-X github.com/opentofu/opentofu/version.dev=no" -o "${bin}.tmp" ./cmd/tofu)
  mv "${bin}.tmp" "${bin}"
}

if command -v terraform >/dev/null 2>&1; then
  fmt_bin="$(command -v terraform)"
else
  fmt_bin="${TOOLS_DIR}/tofu-${TOFU_VERSION}/tofu"
  [[ -x "${fmt_bin}" ]] || build_tofu "${fmt_bin}"
fi

echo "check-terraform: $("${fmt_bin}" version 2>/dev/null | head -n 1) fmt -check"
if ! "${fmt_bin}" fmt -check -recursive -diff "${TF_DIR}"; then
  echo "check-terraform: formatting differs; run '${fmt_bin##*/} fmt -recursive ${TF_DIR}'" >&2
  exit 1
fi

if ! command -v uvx >/dev/null 2>&1; then
  echo "check-terraform: uvx (from uv) is required to run checkov" >&2
  exit 2
fi
echo "check-terraform: checkov ${CHECKOV_VERSION}"
# --skip-download: no call to the vendor's API for guideline links (offline-safe).
uvx --from "checkov==${CHECKOV_VERSION}" checkov -d "${TF_DIR}" --framework terraform \
  --quiet --compact --skip-download
echo "check-terraform: ok"
