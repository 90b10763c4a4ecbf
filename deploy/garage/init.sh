#!/bin/sh
# One-shot set-up of a fresh three-node Garage cluster through its admin API (v2), for
# deploy/compose.yaml's `garage-init` job: connect the nodes, lay them out one per zone, create
# the bucket, import the deployment's S3 key and allow it read/write/owner on the bucket.
# Idempotent: a cluster already laid out, a bucket or key that exists, are left as they are.
# Needs only sh, curl and sed (the curl image has them).
#
# Environment:
#   GARAGE_NODES        node addresses, "ADMIN_HOST:PORT,RPC_HOST:PORT" each, space-separated;
#                       the first node is the one this script talks to
#   GARAGE_ADMIN_TOKEN_FILE  file holding the admin API bearer token
#   GARAGE_BUCKET       bucket name (default sealpost)
#   GARAGE_CAPACITY     bytes each node offers (default 10 GB)
#   AWS_ACCESS_KEY_ID_FILE, AWS_SECRET_ACCESS_KEY_FILE  the key to import (GK + 24 hex; 64 hex)
set -eu

: "${GARAGE_NODES:?set GARAGE_NODES}"
BUCKET=${GARAGE_BUCKET:-sealpost}
CAPACITY=${GARAGE_CAPACITY:-10000000000}
TOKEN=$(cat "${GARAGE_ADMIN_TOKEN_FILE:?set GARAGE_ADMIN_TOKEN_FILE}")
KEY_ID=$(cat "${AWS_ACCESS_KEY_ID_FILE:?set AWS_ACCESS_KEY_ID_FILE}")
KEY_SECRET=$(cat "${AWS_SECRET_ACCESS_KEY_FILE:?set AWS_SECRET_ACCESS_KEY_FILE}")

die() { echo "garage-init: error: $*" >&2; exit 1; }
say() { echo "garage-init: $*" >&2; }

# api ADMIN_ADDR METHOD ENDPOINT [JSON]: the answer's body, then its HTTP status on a last line.
api() {
    if [ $# -ge 4 ]; then
        curl -sS -X "$2" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
            --data "$4" -w '\n%{http_code}' "http://$1/v2/$3"
    else
        curl -sS -X "$2" -H "Authorization: Bearer $TOKEN" -w '\n%{http_code}' "http://$1/v2/$3"
    fi
}
status_of() { tail -n 1; }
body_of() { sed '$d'; }
field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n 1; }

# call ADMIN_ADDR METHOD ENDPOINT [JSON]: like api, failing unless the status is 200.
call() {
    out=$(api "$@") || die "$3 on $1: no answer"
    [ "$(printf '%s\n' "$out" | status_of)" = 200 ] || die "$3 on $1: $(printf '%s\n' "$out" | body_of)"
    printf '%s\n' "$out" | body_of
}

wait_for() { # wait_for ADMIN_ADDR WANT: until /health answers (any status), or answers 200
    i=0
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://$1/health" || true)
        case "$2:$code" in
            any:[1-5]??|200:200) return ;;
        esac
        i=$((i + 1))
        [ $i -lt 120 ] || die "node $1 not ready after 120 s (last answer: $code)"
        sleep 1
    done
}

first_admin=
ids=
connect=
for node in $GARAGE_NODES; do
    admin=${node%%,*}
    rpc=${node#*,}
    [ -n "$first_admin" ] || first_admin=$admin
    wait_for "$admin" any
    id=$(call "$admin" GET 'GetNodeInfo?node=self' | field nodeId)
    [ -n "$id" ] || die "node $admin did not tell its id"
    ids="$ids $id"
    connect="$connect${connect:+,}\"$id@$rpc\""
done
say "nodes:$ids"

call "$first_admin" POST ConnectClusterNodes "[$connect]" >/dev/null

version=$(call "$first_admin" GET GetClusterLayout | sed -n 's/^  "version": *\([0-9]*\).*/\1/p' | head -n 1)
if [ "${version:-0}" -eq 0 ]; then
    roles='' zone=0
    for id in $ids; do
        zone=$((zone + 1))
        roles="$roles${roles:+,}{\"id\":\"$id\",\"zone\":\"z$zone\",\"capacity\":$CAPACITY,\"tags\":[]}"
    done
    call "$first_admin" POST UpdateClusterLayout "{\"roles\":[$roles]}" >/dev/null
    call "$first_admin" POST ApplyClusterLayout '{"version":1}' >/dev/null
    say "layout version 1 applied: one node per zone"
else
    say "layout already at version $version; left as it is"
fi
wait_for "$first_admin" 200

out=$(api "$first_admin" GET "GetBucketInfo?globalAlias=$BUCKET")
if [ "$(printf '%s\n' "$out" | status_of)" = 200 ]; then
    bucket_id=$(printf '%s\n' "$out" | body_of | field id)
    say "bucket $BUCKET exists"
else
    bucket_id=$(call "$first_admin" POST CreateBucket "{\"globalAlias\":\"$BUCKET\"}" | field id)
    say "bucket $BUCKET created"
fi
[ -n "$bucket_id" ] || die "could not read the id of bucket $BUCKET"

out=$(api "$first_admin" GET "GetKeyInfo?id=$KEY_ID")
if [ "$(printf '%s\n' "$out" | status_of)" = 200 ]; then
    say "key $KEY_ID exists"
else
    call "$first_admin" POST ImportKey \
        "{\"accessKeyId\":\"$KEY_ID\",\"secretAccessKey\":\"$KEY_SECRET\",\"name\":\"sealpost\"}" >/dev/null
    say "key $KEY_ID imported"
fi
call "$first_admin" POST AllowBucketKey \
    "{\"bucketId\":\"$bucket_id\",\"accessKeyId\":\"$KEY_ID\",\"permissions\":{\"read\":true,\"write\":true,\"owner\":true}}" \
    >/dev/null
say "key $KEY_ID may read, write and own bucket $BUCKET; done"
