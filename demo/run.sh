#!/usr/bin/env bash
# The quick-start scenario: builds the binaries, starts a registry node, a department's
# credential issuer and a verifier gateway in front of a data service on localhost with
# embedded storage, and walks through the DID lifecycle, a credential's life (offer, receive,
# present, verify, revoke) and signed data requests with their audit trail, with the real
# wallet.
# Every command is printed before it runs, so this file doubles as a tutorial.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building (release)"
cargo build --release --quiet -p did-registry -p wallet-cli -p issuer -p verifier
bin="$PWD/target/release"
work="$(mktemp -d)"
export CIVITAS_PASSPHRASE="demo passphrase, use a real one"
registry_pid=""
issuer_pid=""
data_pid=""
gateway_pid=""
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  [ -n "$issuer_pid" ] && kill "$issuer_pid" 2>/dev/null || true
  [ -n "$data_pid" ] && kill "$data_pid" 2>/dev/null || true
  [ -n "$gateway_pid" ] && kill "$gateway_pid" 2>/dev/null || true
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

echo "== a department sets up its credential issuer: the issuer host holds only its signing key"
issuer_key="$("$bin/issuer" init --data-dir "$work/issuer" 2>/dev/null)"
echo "issuer key: $issuer_key"
# The issuer's URL goes into the department's DID before the issuer starts: pick a port now.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
issuer_url="http://127.0.0.1:$port"
run wallet --wallet-dir "$work/department" init --kdf minimum
department="$(wallet --wallet-dir "$work/department" did create \
  --assertion-key "$issuer_key" --service "OID4VCI=$issuer_url")"
echo "department: $department (its rotation keys stay in the operator's wallet)"

echo "== the root authority accredits the department for two credential types"
resident=https://schemas.civitas.gov.example/vct/ResidentIdentity/v1
official=https://schemas.civitas.gov.example/vct/OfficialRole/v1
run wallet --wallet-dir "$work/root" trust accredit --issuer "$department" --vct "$resident"
run wallet --wallet-dir "$work/root" trust accredit --issuer "$department" --vct "$official" \
  --constraint 'jurisdiction in ["310000"]'
run wallet --wallet-dir "$work/root" trust list --vct "$official"

echo "== the issuer starts (OpenID4VCI, status lists anchored on the ledger)"
"$bin/issuer" serve --did "$department" --listen "127.0.0.1:$port" --data-dir "$work/issuer" \
  --registry "$url" --schemas schemas --public-url "$issuer_url" --operator "$department" \
  --status-interval 10s >"$work/issuer.out" 2>"$work/issuer.log" &
issuer_pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/issuer.out" 2>/dev/null && break
  sleep 0.1
done

echo "== the operator offers the citizen a resident identity credential (signed admin request)"
offer="$(wallet --wallet-dir "$work/department" credential offer --issuer "$issuer_url" \
  --vct ResidentIdentity --claims schemas/examples/ResidentIdentity.json --holder "$did")"
echo "$offer"

echo "== the citizen receives it: core claims (identity number, birth date, address) stayed home"
run wallet --wallet-dir "$work/citizen" credential receive "$offer"
credential="$(wallet --wallet-dir "$work/citizen" --json credential list | sed -n 's/.*"id": "\([A-Z2-7a-z]*\)".*/\1/p' | head -n 1)"
run wallet --wallet-dir "$work/citizen" credential show "$credential" --schemas schemas

echo "== the citizen proves being over 18 and the region, nothing else"
presentation="$(wallet --wallet-dir "$work/citizen" credential present "$credential" \
  --disclose age_over_18,region --audience https://service.example.gov --nonce demo-nonce-1)"
run wallet --wallet-dir "$work/citizen" credential verify "$presentation" \
  --audience https://service.example.gov --nonce demo-nonce-1 --schemas schemas

echo "== an offer outside the accreditation is refused (OfficialRole only for jurisdiction 310000)"
sed -e "s/\"310000\"/\"110000\"/" -e "s/did:civ:[a-z2-7]*/$department/" \
  schemas/examples/OfficialRole.json >"$work/role-beijing.json"
run wallet --wallet-dir "$work/department" credential offer --issuer "$issuer_url" \
  --vct OfficialRole --claims "$work/role-beijing.json" --holder "$did" || true

echo "== the operator revokes the credential; the same presentation now fails"
run wallet --wallet-dir "$work/department" credential revoke --issuer "$issuer_url" "$credential"
run wallet --wallet-dir "$work/citizen" credential verify "$presentation" \
  --audience https://service.example.gov --nonce demo-nonce-1 --schemas schemas || true

echo "== an official receives an OfficialRole (data officer, clearance 4, jurisdiction 310000)"
run wallet --wallet-dir "$work/official" init --kdf minimum
official_did="$(wallet --wallet-dir "$work/official" did create)"
sed -e 's/"clearance": 3/"clearance": 4/' -e "s/did:civ:[a-z2-7]*/$department/" \
  schemas/examples/OfficialRole.json >"$work/role.json"
role_offer="$(wallet --wallet-dir "$work/department" credential offer --issuer "$issuer_url" \
  --vct OfficialRole --claims "$work/role.json" --holder "$official_did")"
run wallet --wallet-dir "$work/official" credential receive "$role_offer"
role="$(wallet --wallet-dir "$work/official" --json credential list | sed -n 's/.*"id": "\([A-Z2-7a-z]*\)".*/\1/p' | head -n 1)"

echo "== a data service (plain files) runs behind the verifier gateway"
mkdir -p "$work/data/datasets" "$work/data/residents/$did"
echo '{"dataset": "population", "districts": 16, "residents": 24870895}' >"$work/data/datasets/population"
echo '{"resident": "'"$did"'", "records": ["housing permit 2025-031"]}' >"$work/data/residents/$did/records"
data_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server "$data_port" --bind 127.0.0.1 --directory "$work/data" >/dev/null 2>&1 &
data_pid=$!
# The gateway's origin goes into its own DID when it first starts: pick its port now.
gw_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
gateway="http://127.0.0.1:$gw_port"
"$bin/verifier" serve --listen "127.0.0.1:$gw_port" --public-origin "$gateway" \
  --data-dir "$work/gateway" --registry "$url" --policy verifier/examples/gateway-policy.toml \
  --schemas schemas --upstream "http://127.0.0.1:$data_port" >"$work/gateway.out" 2>"$work/gateway.log" &
gateway_pid=$!
for _ in $(seq 1 100); do
  grep -q "service did" "$work/gateway.out" 2>/dev/null && break
  sleep 0.1
done
cat "$work/gateway.out"

echo "== the official reads a dataset: a signed request presenting role, clearance, jurisdiction"
run wallet --wallet-dir "$work/official" request GET "$gateway/datasets/population" \
  --credential "$role" --disclose role,clearance,jurisdiction --purpose statistics
echo "== ... what the request looks like on the wire"
run wallet --wallet-dir "$work/official" request GET "$gateway/datasets/population" \
  --credential "$role" --disclose role,clearance,jurisdiction --purpose statistics --print-request
echo
echo "== refused: disclosing the name (sensitive; the route allows internal at most)"
run wallet --wallet-dir "$work/official" request GET "$gateway/datasets/population" \
  --credential "$role" --disclose role,clearance,jurisdiction,name --purpose statistics || true
echo "== refused: no purpose"
run wallet --wallet-dir "$work/official" request GET "$gateway/datasets/population" \
  --credential "$role" --disclose role,clearance,jurisdiction || true
echo "== refused: an unsigned request"
if command -v curl >/dev/null; then run curl -s "$gateway/datasets/population" || true; fi
echo

echo "== the official reads the citizen's records; the citizen sees that access, proven on the ledger"
run wallet --wallet-dir "$work/official" request GET "$gateway/residents/$did/records" \
  --credential "$role" --disclose role,jurisdiction --purpose case-handling
sleep 2
run wallet --wallet-dir "$work/citizen" audit --verifier "$gateway"
run wallet --wallet-dir "$work/official" audit --verifier "$gateway"

echo "== the citizen deactivates the DID, then anyone audits the log"
run wallet --wallet-dir "$work/citizen" did deactivate
run wallet --wallet-dir "$work/citizen" did resolve "$did"
run wallet --wallet-dir "$work/citizen" log verify
echo
echo "== done: every answer above was checked against checkpoints signed by the node's pinned key"
