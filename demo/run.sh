#!/usr/bin/env bash
# The quick-start scenario: builds the binaries, starts a registry node on localhost with
# embedded storage, and walks through the DID lifecycle with the real wallet. Every
# command is printed before it runs, so this file doubles as a tutorial.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building (release)"
cargo build --release --quiet -p did-registry -p wallet-cli
bin="$PWD/target/release"
work="$(mktemp -d)"
export CIVITAS_PASSPHRASE="demo passphrase, use a real one"
registry_pid=""
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

run() {
  echo
  echo "\$ $*"
  "$@"
}
wallet() { "$bin/wallet" "$@"; }

echo "== a root authority makes its DID before any registry exists (DIDs are self-certifying)"
run wallet --wallet-dir "$work/root" init --kdf minimum
root_did="$(wallet --wallet-dir "$work/root" did create --offline)"
echo "root authority: $root_did"

echo "== the registry node starts with that root authority and a 30 s recovery window"
"$bin/did-registry" serve --listen 127.0.0.1:0 --data-dir "$work/node" \
  --authority "$root_did" --recovery-window 30s >"$work/node.out" 2>"$work/node.log" &
registry_pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/node.out" 2>/dev/null && break
  sleep 0.1
done
url="http://$(sed -n 's/^listening on //p' "$work/node.out" | head -n 1)"
echo "registry: $url"
export CIVITAS_REGISTRY="$url"

run wallet --wallet-dir "$work/root" did publish

echo "== a citizen creates a DID, rotates a key and resolves the old version"
run wallet --wallet-dir "$work/citizen" init --kdf minimum
did="$(wallet --wallet-dir "$work/citizen" did create)"
echo "citizen: $did"
first_version="$(wallet --wallet-dir "$work/citizen" --json did resolve "$did" | sed -n 's/.*"versionId": "\([a-z2-7]*\)".*/\1/p' | head -n 1)"
run wallet --wallet-dir "$work/citizen" did rotate
run wallet --wallet-dir "$work/citizen" did resolve "$did"
run wallet --wallet-dir "$work/citizen" did resolve "$did" --version-id "$first_version"

echo "== the recovery key goes offline; a thief with the everyday keys rotates; the owner recovers"
run wallet --wallet-dir "$work/citizen" did export-recovery "$did" "$work/recovery.key"
mkdir -p "$work/thief" && cp "$work/citizen/keystore.json" "$work/citizen/config.json" "$work/thief/"
run wallet --wallet-dir "$work/thief" did rotate "$did"
run wallet --wallet-dir "$work/citizen" did recover "$did" --recovery-key "$work/recovery.key"
run wallet --wallet-dir "$work/citizen" did history "$did"
echo "(the thief's keys are now marked compromised:)"
run wallet --wallet-dir "$work/thief" did rotate "$did" || true

echo "== the root authority accredits a department to issue resident identity credentials"
run wallet --wallet-dir "$work/department" init --kdf minimum
department="$(wallet --wallet-dir "$work/department" did create --service OID4VCI=http://127.0.0.1:9000)"
run wallet --wallet-dir "$work/root" trust accredit --issuer "$department" \
  --vct https://civitas.example/vct/ResidentIdentity --constraint 'jurisdiction in ["310000"]'
run wallet --wallet-dir "$work/root" trust list --vct https://civitas.example/vct/ResidentIdentity

echo "== the citizen deactivates the DID, then anyone audits the log"
run wallet --wallet-dir "$work/citizen" did deactivate
run wallet --wallet-dir "$work/citizen" did resolve "$did"
run wallet --wallet-dir "$work/citizen" log verify
echo
echo "== done: every answer above was checked against checkpoints signed by the node's pinned key"
