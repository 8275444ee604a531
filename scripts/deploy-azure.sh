#!/usr/bin/env bash
# Deploys the dispatcher to Azure in one command: builds the function app for the workers' glibc, creates or
# updates the resource group's deployment of infra/main.bicep, stores a generated encryption key in its Key
# Vault the first time (never replacing one), publishes the app the way its plan takes it (no key), waits until
# the API answers, and prints where it is. A second run updates everything in place.
#
#   scripts/deploy-azure.sh --name acme --location westeurope [--resource-group RG] [--plan flex|ep1|dedicated]
#                           [--outbound-ip] [--alert-email ADDRESS] [--package DIR] [--what-if]
#
# --outbound-ip gives the app one fixed outbound address (printed), for integrators who allowlist the sender.
# --alert-email sends alerts there: dead-lettered messages, a deliveries backlog, failures, Cosmos DB 429s.
# --what-if shows what the deployment would change (`az deployment group what-if`) and publishes nothing.
# --package publishes a function app already assembled (scripts/package-function-app.sh makes one).
# Needs: the Azure CLI, logged in (`az login`) as a user who may create role assignments; Azure Functions Core
# Tools (`func`) for Flex Consumption; zip for the other plans; curl and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '6,7p' "$0" | sed 's/^# *//' >&2
  exit 2
}

fail() {
  echo "deploy-azure: $*" >&2
  exit 1
}

name="" location="" group="" plan="flex" package="" what_if=false outbound_ip=false alert_email=""
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="${2:-}"; shift 2 ;;
    --location) location="${2:-}"; shift 2 ;;
    --resource-group) group="${2:-}"; shift 2 ;;
    --plan) plan="${2:-}"; shift 2 ;;
    --package) package="${2:-}"; shift 2 ;;
    --outbound-ip) outbound_ip=true; shift ;;
    --alert-email) alert_email="${2:-}"; shift 2 ;;
    --what-if) what_if=true; shift ;;
    -h|--help) usage ;;
    *) echo "deploy-azure: unknown argument $1" >&2; usage ;;
  esac
done

# Every resource name starts with NAME, and a Service Bus namespace must start with a letter.
[[ "$name" =~ ^[a-z][a-z0-9]{2,10}$ ]] ||
  fail "--name ${name:-(missing)}: 3 to 11 lowercase letters or digits, starting with a letter"
[ -n "$location" ] || fail "--location is missing (an Azure region, e.g. westeurope)"
case "$plan" in
  flex) hosting=FlexConsumption ;;
  ep1) hosting=ElasticPremium ;;
  dedicated) hosting=Dedicated ;;
  *) fail "--plan $plan: flex, ep1 or dedicated" ;;
esac
[ -z "$alert_email" ] || [[ "$alert_email" =~ ^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$ ]] ||
  fail "--alert-email $alert_email: not an email address"
group="${group:-$name}"
for tool in az curl openssl; do
  command -v "$tool" >/dev/null || fail "$tool is needed"
done
if [ "$plan" = flex ]; then
  command -v func >/dev/null || fail "func (Azure Functions Core Tools 4) is needed to publish to Flex Consumption"
else
  command -v zip >/dev/null || fail "zip is needed to publish to $hosting"
fi

# Each step says what it does; a step that fails stops the run, named.
step=""
trap '[ -z "$step" ] || echo "deploy-azure: stopped: $step failed" >&2' ERR
begin() {
  step="$1"
  echo "==> $step" >&2
}

begin "finding who deploys"
deployer=$(az ad signed-in-user show --query id --output tsv)
parameters=(name="$name" hostingPlan="$hosting" outboundIp="$outbound_ip" alertEmail="$alert_email"
  deployerObjectId="$deployer")
begin "creating the resource group $group"
az group create --name "$group" --location "$location" --output none
if $what_if; then
  begin "comparing the template with what is deployed"
  az deployment group what-if --resource-group "$group" --name dispatcher --template-file infra/main.bicep \
    --parameters "${parameters[@]}"
  exit 0
fi

if [ -z "$package" ]; then
  begin "building the function app for Azure's workers"
  scripts/package-function-app.sh dist/function-app
  package=dist/function-app
fi
[ -x "$package/handler" ] || fail "$package has no handler: not a function app (scripts/package-function-app.sh)"

begin "deploying the template"
outputs=$(az deployment group create --resource-group "$group" --name dispatcher --template-file infra/main.bicep \
  --parameters "${parameters[@]}" \
  --query "properties.outputs.[functionApp.value, keyVault.value, outboundIpAddress.value]" --output tsv)
read -r app vault outbound <<<"$outputs" || true
[ -n "$app" ] && [ -n "$vault" ] || fail "the deployment named no function app or Key Vault: $outputs"

# The key that seals webhook secrets: made once, here, and never replaced (secrets sealed with it would be lost).
# Written from a file of this user's, so that it appears in no command line. The deployer's right to write it
# may take a minute to reach the vault.
begin "storing the encryption key in $vault (first deployment only)"
if ! az keyvault secret show --vault-name "$vault" --name dispatcher-encryption-key --query id --output none 2>/dev/null; then
  keyfile=$(umask 077 && mktemp)
  trap 'rm -f "$keyfile"' EXIT
  openssl rand -base64 32 | tr -d '\n' >"$keyfile"
  for attempt in $(seq 1 12); do
    az keyvault secret set --vault-name "$vault" --name dispatcher-encryption-key --file "$keyfile" \
      --encoding utf-8 --output none && break
    [ "$attempt" -lt 12 ] || false
    sleep "${DEPLOY_AZURE_POLL_SECONDS:-10}"
  done
  rm -f "$keyfile"
fi

if [ "$plan" = flex ]; then
  # Core Tools' one-deploy to the app's package container, with the caller's Entra token: no key.
  begin "publishing to $app (Flex Consumption)"
  (cd "$package" && func azure functionapp publish "$app")
else
  # Core Tools would upload with the AzureWebJobsStorage connection string, which the app does not have.
  begin "publishing to $app ($hosting)"
  archive="$(mktemp -d)/function-app.zip"
  (cd "$package" && zip -qr "$archive" .)
  az functionapp deploy --resource-group "$group" --name "$app" --src-path "$archive" --type zip --output none
fi

begin "reading the API key"
key=$(az functionapp keys list --resource-group "$group" --name "$app" --query functionKeys.default --output tsv)
api="https://$app.azurewebsites.net/api/v1"
begin "waiting for $api/info"
for _ in $(seq 1 60); do
  if curl --silent --fail --max-time 10 --header "x-functions-key: $key" "$api/info" >/dev/null; then
    step=""
    echo "API     $api"
    echo "portal  https://$app.azurewebsites.net/api/portal/"
    echo "key     az functionapp keys list -g $group -n $app --query functionKeys.default -o tsv"
    [ -z "$outbound" ] || echo "outbound IP  $outbound (give it to integrators who allowlist the sender)"
    exit 0
  fi
  sleep "${DEPLOY_AZURE_POLL_SECONDS:-5}"
done
fail "$api/info did not answer within $((60 * ${DEPLOY_AZURE_POLL_SECONDS:-5})) s: see the app's logs in Application Insights"
