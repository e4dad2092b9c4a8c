#!/usr/bin/env bash
# Prints fresh random secrets in the format that one deployment reads:
#   deploy/new-secrets.sh compose > deploy/.env
#   deploy/new-secrets.sh kubernetes > deploy/kubernetes/secrets.env
# Both target files are ignored by git. Values are hex, so they need no quoting in a DSN,
# a .env file or a shell.
set -euo pipefail

secret() {
  python3 -c 'import secrets; print(secrets.token_hex(32))'
}

case "${1:-}" in
  compose)
    echo "POSTGRES_PASSWORD=$(secret)"
    echo "SEVENTWEETS_CLUSTER_SECRET=$(secret)"
    echo "NODE1_TOKEN=$(secret)"
    echo "NODE2_TOKEN=$(secret)"
    echo "NODE3_TOKEN=$(secret)"
    ;;
  kubernetes)
    echo "postgres-password=$(secret)"
    echo "cluster-secret=$(secret)"
    echo "api-token=$(secret)"
    ;;
  *)
    echo "usage: $0 compose|kubernetes" >&2
    exit 2
    ;;
esac
