#!/usr/bin/env bash
# Deploys the dispatcher to Azure in one command: builds the function app for the workers' glibc, creates or
# updates the resource group's deployment of infra/main.json (the ARM form of infra/main.bicep: the one the tests
# check), stores a generated encryption key and operator key in its Key Vault the first time (never replacing
# one), makes sure the app can read them, publishes the app the way its plan takes it (no key), makes the
# operator key the app's function key `operator` too, waits until
# the API answers, and prints where it is. A second run with the same flags updates everything in place (a flag
# left out is a setting changed: without --outbound-ip the app leaves the VNet).
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
  sed -n '9,10p' "$0" | sed 's/^# *//' >&2
  exit 2
}

fail() {
  echo "deploy-azure: $*" >&2
  exit 1
}

name="" location="" group="" plan="flex" package="" what_if=false outbound_ip=false alert_email=""
# The value of the option $1, which must follow it.
value() {
  [ $# -ge 2 ] && [[ "$2" != --* ]] || fail "$1 needs a value"
  printf '%s' "$2"
}
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$(value "$@"); shift 2 ;;
    --location) location=$(value "$@"); shift 2 ;;
    --resource-group) group=$(value "$@"); shift 2 ;;
    --plan) plan=$(value "$@"); shift 2 ;;
    --package) package=$(value "$@"); shift 2 ;;
    --outbound-ip) outbound_ip=true; shift ;;
    --alert-email) alert_email=$(value "$@"); shift 2 ;;
    --what-if) what_if=true; shift ;;
    -h|--help) usage ;;
    *) echo "deploy-azure: unknown argument $1" >&2; usage ;;
  esac
done
# A package given relative to where the script was started, which is not where it runs.
[ -z "$package" ] || package=$(cd "$OLDPWD" && realpath -m -- "$package")

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
if $outbound_ip && [ "$plan" = flex ]; then
  # Flex Consumption joins a VNet through a subnet delegated to Container Apps environments.
  begin "registering the Microsoft.App resource provider"
  az provider register --namespace Microsoft.App --wait
fi
begin "creating the resource group $group"
az group create --name "$group" --location "$location" --output none
if $what_if; then
  begin "comparing the template with what is deployed"
  az deployment group what-if --resource-group "$group" --name dispatcher --template-file infra/main.json \
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
# One output a line, in this order (tsv prints a list's items on lines of their own).
outputs=$(az deployment group create --resource-group "$group" --name dispatcher --template-file infra/main.json \
  --parameters "${parameters[@]}" \
  --query "properties.outputs.[functionApp.value, keyVault.value, outboundIpAddress.value]" --output tsv)
{ read -r app; read -r vault; read -r outbound; } <<<"$outputs" || true
[ -n "$app" ] && [ -n "$vault" ] || fail "the deployment named no function app or Key Vault: $outputs"

# The key that seals webhook secrets and the operator's key: each made once, here, and never replaced (secrets
# sealed with the first would be lost; integrations hold the second): only a vault that answers SecretNotFound
# gets one; any other failure (the deployer's new right not yet there, throttling) is asked again. Written from a
# file of this user's, so that no key is on a command line.
keyfile=$(umask 077 && mktemp)
trap 'rm -f "$keyfile"' EXIT
ensure_secret() { # name, what it is, how to make one
  local secret=$1 found
  begin "storing $2 in $vault (first deployment only)"
  for attempt in $(seq 1 30); do
    if found=$(az keyvault secret show --vault-name "$vault" --name "$secret" --query id --output tsv 2>&1); then
      return 0
    fi
    if [[ "$found" == *SecretNotFound* ]]; then
      $3 | tr -d '\n' >"$keyfile"
      az keyvault secret set --vault-name "$vault" --name "$secret" --file "$keyfile" --encoding utf-8 --output none \
        && return 0
    fi
    [ "$attempt" -lt 30 ] || fail "the vault $vault could not be read nor written: $found"
    sleep "${DEPLOY_AZURE_POLL_SECONDS:-10}"
  done
}
ensure_secret dispatcher-encryption-key "the encryption key" "openssl rand -base64 32"
ensure_secret dispatcher-operator-key "the operator key" "openssl rand -hex 24"
: >"$keyfile"

# Each app setting refers to its secret; the platform reads them again when the settings change, which this does,
# until it says every reference resolves (the app's right to read the vault may take a minute to arrive).
begin "letting the app read its keys"
references=("DISPATCHER_ENCRYPTION_KEY=@Microsoft.KeyVault(VaultName=$vault;SecretName=dispatcher-encryption-key)"
  "DISPATCHER_API_KEY=@Microsoft.KeyVault(VaultName=$vault;SecretName=dispatcher-operator-key)")
status_url="https://management.azure.com/subscriptions/{subscriptionId}/resourceGroups/$group/providers/Microsoft.Web/sites/$app/config/configreferences/appsettings"
for attempt in $(seq 1 30); do
  az functionapp config appsettings set --resource-group "$group" --name "$app" --settings "${references[@]}" \
    --output none
  unresolved=""
  for setting in DISPATCHER_ENCRYPTION_KEY DISPATCHER_API_KEY; do
    status=$(az rest --method get --url "$status_url/$setting?api-version=2025-05-01" --query properties.status \
      --output tsv || true)
    [ "$status" = Resolved ] || unresolved="$setting ($status)"
  done
  [ -z "$unresolved" ] && break
  [ "$attempt" -lt 30 ] || fail "the app cannot read its keys in $vault: $unresolved"
  sleep "${DEPLOY_AZURE_POLL_SECONDS:-10}"
done

if [ "$plan" = flex ]; then
  # Core Tools' one-deploy to the app's package container, with the caller's Entra token: no key.
  begin "publishing to $app (Flex Consumption)"
  (cd "$package" && func azure functionapp publish "$app" --custom)
else
  # Core Tools would upload with the AzureWebJobsStorage connection string, which the app does not have.
  begin "publishing to $app ($hosting)"
  archive_dir=$(mktemp -d)
  (cd "$package" && zip -qr "$archive_dir/function-app.zip" .)
  az functionapp deploy --resource-group "$group" --name "$app" --src-path "$archive_dir/function-app.zip" \
    --type zip --output none
  rm -rf "$archive_dir"
fi

# The operator's key, read from the vault (never onto a command line), is also the app's function key
# `operator`: what `az functionapp keys list` shows keeps opening the API (the Api function is anonymous, and
# the handler checks DISPATCHER_API_KEY: docs/azure-functions.md §4).
key=$(az keyvault secret show --vault-name "$vault" --name dispatcher-operator-key --query value --output tsv)
[ -n "$key" ] || fail "the operator key could not be read from $vault"
begin "setting the function key 'operator'"
printf '{"properties": {"name": "operator", "value": "%s"}}' "$key" >"$keyfile"
az rest --method put \
  --url "https://management.azure.com/subscriptions/{subscriptionId}/resourceGroups/$group/providers/Microsoft.Web/sites/$app/host/default/functionKeys/operator?api-version=2025-05-01" \
  --body "@$keyfile" --output none
: >"$keyfile"

# The key goes to curl on stdin, never on a command line.
api="https://$app.azurewebsites.net/api/v1"
begin "waiting for $api/info"
for _ in $(seq 1 60); do
  if curl --silent --fail --max-time 10 --config - "$api/info" >/dev/null <<<"header = \"x-functions-key: $key\""; then
    step=""
    echo "API     $api"
    echo "portal  https://$app.azurewebsites.net/api/portal/"
    echo "key     az keyvault secret show --vault-name $vault --name dispatcher-operator-key --query value -o tsv"
    [ -z "$outbound" ] || echo "outbound IP  $outbound (give it to integrators who allowlist the sender)"
    exit 0
  fi
  sleep "${DEPLOY_AZURE_POLL_SECONDS:-5}"
done
fail "$api/info did not answer within $((60 * ${DEPLOY_AZURE_POLL_SECONDS:-5})) s: see the app's logs in Application Insights"
