#!/usr/bin/env bash
# `make deploy STACK=<stack>`: pulumi up for one stack, after checking what it needs is there.
set -euo pipefail
stack="${1:?usage: pulumi-up.sh <stack>}"
root=$(cd "$(dirname "$0")/../.." && pwd)

if [ ! -f "$root/Pulumi.$stack.yaml" ]; then
  echo "make deploy: no stack file Pulumi.$stack.yaml; stacks here: $(cd "$root" && ls Pulumi.*.yaml | sed 's/Pulumi\.\(.*\)\.yaml/\1/' | paste -sd' ')." >&2
  exit 2
fi
if ! command -v pulumi >/dev/null 2>&1; then
  echo "make deploy STACK=$stack: the Pulumi CLI is not installed; install it (https://www.pulumi.com/docs/install/) and run 'pulumi login'." >&2
  exit 2
fi
# Any source the AWS SDK reads counts: keys, a profile, web identity (CI), a container role.
if [ -z "${AWS_ACCESS_KEY_ID:-}${AWS_PROFILE:-}${AWS_WEB_IDENTITY_TOKEN_FILE:-}${AWS_CONTAINER_CREDENTIALS_FULL_URI:-}${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}" ] \
   && [ ! -f "${AWS_SHARED_CREDENTIALS_FILE:-$HOME/.aws/credentials}" ]; then
  echo "make deploy STACK=$stack: no AWS credentials found; set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) for the target account." >&2
  exit 2
fi
cd "$root"
exec pulumi up --stack "$stack"
