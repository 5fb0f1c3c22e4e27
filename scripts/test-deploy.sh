#!/usr/bin/env bash
# The deployment path, tested here as users take it (no Docker needed):
#   template checks: cfn-lint, sam validate --lint, checkov (the member-account template too);
#   builds: sam build --beta-features (cargo lambda, arm64: what the template
#           deploys, all three functions) and cargo lambda build --release --x86-64;
#   the artifacts: no glibc newer than Amazon Linux 2023's (2.34); both complete
#           rotations behind a Lambda Runtime API (arm64 under qemu);
#   the AWS CLI path: scripts/test-aws-cli.sh;
#   the member-account template deployed in a member account: scripts/test-member-template.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deploy-tools.sh
scripts/setup-moto.sh
rm -rf .aws-sam
export PATH="$PWD/.venv-deploy/bin:$PATH" SAM_CLI_TELEMETRY=0
binary=iam-key-rotation
# The ELF machine of a binary (file(1) may be missing on a fresh machine).
elf_machine() {
  python3 -c 'import sys; m=int.from_bytes(open(sys.argv[1],"rb").read(20)[18:20],"little"); print({0xB7:"aarch64",0x3E:"x86_64"}.get(m,hex(m)))' "$1"
}

echo "== template checks" >&2
cfn-lint template.yaml deploy/member-account.yaml
sam validate --lint --region us-east-1
.venv-checkov/bin/checkov -f template.yaml --skip-download --compact --quiet
.venv-checkov/bin/checkov -f deploy/member-account.yaml --skip-download --compact --quiet

echo "== sam build --beta-features (the arm64 artifacts the template deploys: rotation, audit and delivery)" >&2
sam build --beta-features
arm64=.aws-sam/build/RotationFunction/bootstrap
audit_arm64=.aws-sam/build/AuditFunction/bootstrap
deliver_arm64=.aws-sam/build/DeliveryFunction/bootstrap
for artifact in "$arm64" "$audit_arm64" "$deliver_arm64"; do
  [ "$(elf_machine "$artifact")" = aarch64 ] || { echo "sam build did not produce an arm64 $artifact" >&2; exit 1; }
done

echo "== cargo lambda build --release --x86-64 (the artifacts for Architectures: [x86_64]; the benchmark's)" >&2
cargo lambda build --release --x86-64 --bin "$binary" --bin iam-key-deliver --lambda-dir target/lambda-x86_64
x86_64=target/lambda-x86_64/$binary/bootstrap

echo "== the artifacts need no glibc newer than 2.34 (Amazon Linux 2023)" >&2
for bootstrap in "$arm64" "$audit_arm64" "$deliver_arm64" "$x86_64"; do
  newest=$(readelf -V --wide "$bootstrap" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
  size=$(stat -c %s "$bootstrap")
  zipped=$(python3 -c "import io,sys,zipfile; b=io.BytesIO(); z=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED); z.write(sys.argv[1],'bootstrap'); z.close(); print(len(b.getvalue()))" "$bootstrap")
  echo "$(elf_machine "$bootstrap") bootstrap ($bootstrap): $size bytes, $zipped zipped, newest glibc symbol version $newest"
  if [ "$(printf '%s\n2.34\n' "$newest" | sort -V | tail -n 1)" != "2.34" ]; then
    echo "$bootstrap needs glibc $newest, newer than Amazon Linux 2023's 2.34" >&2
    exit 1
  fi
done

echo "== the release artifacts rotate against moto: x86_64, and arm64 under qemu" >&2
IAM_KEY_ROTATION_BOOTSTRAP=$x86_64 cargo test --test it lambda_binary::
IAM_KEY_ROTATION_BOOTSTRAP=$arm64 IAM_KEY_ROTATION_LAUNCHER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
  cargo test --test it lambda_binary::
echo "== the audit function's arm64 artifact audits a staged account under qemu" >&2
IAM_KEY_AUDIT_BOOTSTRAP=$audit_arm64 IAM_KEY_ROTATION_LAUNCHER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
  cargo test --test it audit_function::
echo "== the delivery function's arm64 artifact delivers to GitHub, SSM and a copy under qemu" >&2
IAM_KEY_DELIVER_BOOTSTRAP=$deliver_arm64 IAM_KEY_ROTATION_LAUNCHER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
  cargo test --test it delivery::a_rotation_reaches_github_ssm_and_a_copy

echo "== the AWS CLI path" >&2
scripts/test-aws-cli.sh

echo "== the member-account template deploys in a member account and is read through" >&2
scripts/test-member-template.sh
