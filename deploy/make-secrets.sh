#!/bin/sh
# Makes the secrets deploy/compose.yaml mounts, in deploy/secrets/ (a 0700 directory, ignored by
# git); an existing file is kept, so running it again changes nothing.
#
#   gateway.key           the gateway signing key (PKCS#8 PEM Ed25519), shared by every gateway
#   postgres_password     the `sealpost` database role's password (hex: safe inside a URL)
#   garage_rpc_secret     Garage's cluster secret (32 bytes, hex)
#   garage_admin_token    Garage's admin API token (for the garage-init job)
#   s3_access_key_id      the gateways' S3 key id (Garage's form: GK and 24 hex digits)
#   s3_secret_access_key  its secret (32 bytes, hex)
#
# Compose mounts secret files with their host mode, and the containers run as non-root users of
# their own, so the files are made world-readable (0644) inside the 0700 directory: only the
# owner of deploy/secrets/ on the host, and the containers, can read them.
# Needs: openssl.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 700 secrets

make() { # make NAME COMMAND...: writes the command's output to secrets/NAME unless it exists
    name=$1
    shift
    if [ -s "secrets/$name" ]; then
        echo "make-secrets: secrets/$name exists; kept"
        return
    fi
    "$@" >"secrets/$name.new"
    mv "secrets/$name.new" "secrets/$name"
    echo "make-secrets: secrets/$name made"
}
access_key_id() { printf 'GK%s\n' "$(openssl rand -hex 12)"; }

make gateway.key openssl genpkey -algorithm ed25519
make postgres_password openssl rand -hex 24
make garage_rpc_secret openssl rand -hex 32
make garage_admin_token openssl rand -hex 32
make s3_access_key_id access_key_id
make s3_secret_access_key openssl rand -hex 32
chmod 0644 secrets/*
