#!/usr/bin/env bash
# Creates the storage for RepoBackup@1 with the Azure CLI and prints the create+write-only SAS URL to store
# as the secret pipeline variable BackupSasUrl.
#
#   az login
#   ACCOUNT=contosorepobackup ./setup-storage.sh
#
# Settings (environment variables, defaults in brackets):
#   ACCOUNT          storage account name, 3-24 lowercase letters/digits, globally unique   (required)
#   RESOURCE_GROUP   resource group, created if missing                      [rg-repo-backup]
#   LOCATION         Azure region; pick one outside your DevOps organization's geography   [westeurope]
#   SKU              Standard_GRS or Standard_RAGRS (geo-redundant, supports the Archive tier)  [Standard_GRS]
#   CONTAINER        container name                                          [repo-backups]
#   PROTECTION       versioning | immutability | none                         [versioning]
#                      The backup SAS needs write (w), and w lets anyone holding the SAS overwrite an existing
#                      blob (the task's own uploads never do; an attacker's can). Protection is what keeps older
#                      backups alive after a leak:
#                      versioning:   blob versioning + 30-day soft delete for blobs and containers; an
#                                    overwritten backup survives as a previous version (a cw SAS cannot delete
#                                    versions), a deleted one is recoverable for 30 days
#                      immutability: a time-based retention (WORM) policy on the container: no blob can be
#                                    changed or deleted for IMMUTABLE_DAYS (left unlocked; lock it yourself
#                                    with `az storage container immutability-policy lock` once you are sure)
#                      none:         nothing: anyone holding the SAS can overwrite every backup, and an
#                                    overwritten backup is gone
#   IMMUTABLE_DAYS   retention for PROTECTION=immutability                     [365]
#   POLICY_FILE      lifecycle policy to apply; its "repo-backups/" prefixes are replaced by "$CONTAINER/"
#                                                                             [lifecycle-policy.json beside this script]
#   EXPIRY           SAS expiry, UTC, as YYYY-MM-DDTHH:MMZ                   [one year from now]
#   INCREMENTAL      true: the SAS also grants read and list (sp=rcwl), which RepoBackup@1's incremental: true
#                    needs to find the previous run and copy its unchanged archives; anyone holding the SAS can then
#                    read and list every backup (still not delete them). false: create + write only (sp=cw)  [false]
#   PRINCIPAL        instead of a SAS: the application (client) id of an Azure Resource Manager service connection
#                    (workload identity federation); it gets "Storage Blob Data Contributor" on the container only,
#                    and no SAS is made (RepoBackup@1 with blobAuth: serviceConnection). That role can also delete
#                    and overwrite blobs, which a cw SAS could not delete: keep PROTECTION on (versioning + soft
#                    delete, or immutability) so a stolen pipeline cannot erase older backups.
#
# The SAS is signed with the account key; to revoke it early, rotate that key (key1).
set -euo pipefail

: "${ACCOUNT:?set ACCOUNT to the storage account name, e.g. ACCOUNT=contosorepobackup $0}"
RESOURCE_GROUP="${RESOURCE_GROUP:-rg-repo-backup}"
LOCATION="${LOCATION:-westeurope}"
SKU="${SKU:-Standard_GRS}"
CONTAINER="${CONTAINER:-repo-backups}"
PROTECTION="${PROTECTION:-versioning}"
IMMUTABLE_DAYS="${IMMUTABLE_DAYS:-365}"
INCREMENTAL="${INCREMENTAL:-false}"
case "$INCREMENTAL" in
  true) SAS_PERMISSIONS=rcwl ;;
  false) SAS_PERMISSIONS=cw ;;
  *) echo "INCREMENTAL must be true or false (got '$INCREMENTAL')" >&2; exit 2 ;;
esac
POLICY_FILE="${POLICY_FILE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lifecycle-policy.json}"

if [[ -z "${EXPIRY:-}" ]]; then
  # GNU date, then BSD/macOS date
  EXPIRY="$(date -u -d '+1 year' '+%Y-%m-%dT%H:%MZ' 2>/dev/null || date -u -v+1y '+%Y-%m-%dT%H:%MZ')"
fi

case "$PROTECTION" in
  versioning | immutability | none) ;;
  *) echo "PROTECTION must be versioning, immutability or none (got '$PROTECTION')" >&2; exit 2 ;;
esac
if [[ ! "$IMMUTABLE_DAYS" =~ ^[1-9][0-9]*$ ]]; then
  echo "IMMUTABLE_DAYS must be a whole number of days (got '$IMMUTABLE_DAYS')" >&2; exit 2
fi
case "$SKU" in
  Standard_GRS | Standard_RAGRS | Standard_LRS) ;;
  *) echo "SKU $SKU: the lifecycle policy moves blobs to Archive, which needs an LRS, GRS or RA-GRS account" >&2; exit 2 ;;
esac
if [[ ! -f "$POLICY_FILE" ]]; then
  echo "lifecycle policy not found: $POLICY_FILE (set POLICY_FILE)" >&2
  exit 2
fi

echo "== Resource group $RESOURCE_GROUP ($LOCATION)"
az group create --name "$RESOURCE_GROUP" --location "$LOCATION" --output none

echo "== Storage account $ACCOUNT ($SKU)"
az storage account create \
  --name "$ACCOUNT" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" \
  --sku "$SKU" --kind StorageV2 --access-tier Hot \
  --https-only true --min-tls-version TLS1_2 --allow-blob-public-access false \
  --output none

echo "== Container $CONTAINER"
az storage container-rm create \
  --resource-group "$RESOURCE_GROUP" --storage-account "$ACCOUNT" --name "$CONTAINER" \
  --public-access off --output none

case "$PROTECTION" in
  versioning)
    echo "== Blob versioning + 30-day soft delete"
    az storage account blob-service-properties update \
      --resource-group "$RESOURCE_GROUP" --account-name "$ACCOUNT" \
      --enable-versioning true \
      --enable-delete-retention true --delete-retention-days 30 \
      --enable-container-delete-retention true --container-delete-retention-days 30 \
      --output none
    ;;
  immutability)
    echo "== Time-based retention (WORM) on $CONTAINER: $IMMUTABLE_DAYS days, unlocked"
    az storage container immutability-policy create \
      --resource-group "$RESOURCE_GROUP" --account-name "$ACCOUNT" --container-name "$CONTAINER" \
      --period "$IMMUTABLE_DAYS" --output none
    ;;
  none)
    echo "== WARNING: no versioning or immutability (PROTECTION=none): anyone holding the SAS can overwrite" >&2
    echo "   every backup in $CONTAINER, and an overwritten backup cannot be recovered." >&2
    ;;
esac

echo "== Lifecycle policy ($POLICY_FILE, prefix $CONTAINER/)"
policy="$(mktemp)"
trap 'rm -f "$policy"' EXIT
sed "s#\"repo-backups/#\"$CONTAINER/#g" "$POLICY_FILE" > "$policy"
az storage account management-policy create \
  --resource-group "$RESOURCE_GROUP" --account-name "$ACCOUNT" --policy "@$policy" --output none

if [[ -n "${PRINCIPAL:-}" ]]; then
  echo "== Role Storage Blob Data Contributor for $PRINCIPAL on the container $CONTAINER"
  scope="$(az storage account show --resource-group "$RESOURCE_GROUP" --name "$ACCOUNT" --query id --output tsv)/blobServices/default/containers/$CONTAINER"
  az role assignment create --assignee "$PRINCIPAL" --role "Storage Blob Data Contributor" --scope "$scope" --output none
  cat <<EOT

Done. No SAS exists. Use these inputs (the service connection's principal must also be a member of the
Azure DevOps organization with Read on Repositories when authType is serviceConnection):

  azureSubscription: <the service connection's name>
  blobAuth: serviceConnection
  storageAccount: $ACCOUNT
  containerName: $CONTAINER

The role lets the principal delete and overwrite blobs; older backups are protected by: $PROTECTION.
EOT
  exit 0
fi

if [[ "$SAS_PERMISSIONS" == cw ]]; then
  echo "== Create+write-only container SAS, expires $EXPIRY"
else
  echo "== Container SAS with read, create, write and list (INCREMENTAL=true), expires $EXPIRY"
fi
key="$(az storage account keys list --resource-group "$RESOURCE_GROUP" --account-name "$ACCOUNT" --query '[0].value' --output tsv)"
sas="$(az storage container generate-sas \
  --account-name "$ACCOUNT" --account-key "$key" --name "$CONTAINER" \
  --permissions "$SAS_PERMISSIONS" --expiry "$EXPIRY" --https-only --output tsv)"
unset key
if [[ "$SAS_PERMISSIONS" == cw ]]; then
  RIGHTS="It can create and write blobs only: it cannot read, list or delete backups (set incremental: false in the
pipeline; INCREMENTAL=true makes a SAS for incremental: true)."
else
  RIGHTS="It can read, list, create and write blobs (incremental: true needs read and list to find and copy the previous
run): anyone holding it can read every backup, but not delete one."
fi

cat <<EOT

Done. Store this URL as the secret pipeline variable BackupSasUrl ("Keep this value secret"):

  https://$ACCOUNT.blob.core.windows.net/$CONTAINER?$sas

$RIGHTS Write rights can still
overwrite a blob: protection for that is $PROTECTION. It expires $EXPIRY; generate a new one before then with:

  az storage container generate-sas --account-name $ACCOUNT --name $CONTAINER \\
    --permissions $SAS_PERMISSIONS --expiry "\$(date -u -d '+1 year' '+%Y-%m-%dT%H:%MZ')" --https-only --account-key "\$(az storage account keys list \\
    --resource-group $RESOURCE_GROUP --account-name $ACCOUNT --query '[0].value' --output tsv)" --output tsv
EOT
