// Everything the dispatcher needs on Azure, in one resource group, connected by the function app's managed
// identity (no keys in app settings): deploy with
//   az deployment group create -g <group> -f infra/main.bicep -p name=<prefix>
// then publish the code (docs/azure.md, "Deploy"). infra/main.json is the same template as ARM JSON, for
// `az deployment group create -f infra/main.json` without Bicep; keep the two in step (`az bicep build`).
// A test (__integrations__/tests/it/infra.rs) reads main.json and checks it against what the code expects.

@description('Prefix of every resource name: 3 to 11 lowercase letters or digits.')
@minLength(3)
@maxLength(11)
param name string

param location string = resourceGroup().location

@description('FlexConsumption (FC1: serverless, billed per execution and GB-second, scales per function; the default), ElasticPremium (EP1: always-ready instances, billed around the clock) or Dedicated (App Service P1v3). Linux Consumption (Y1) is not offered: its publish needs a storage key, and it retires on 30 September 2028.')
@allowed([
  'FlexConsumption'
  'ElasticPremium'
  'Dedicated'
])
param hostingPlan string = 'FlexConsumption'

@description('Flex Consumption: the memory of each instance, in MB (the handler needs tens).')
@allowed([ 512, 2048, 4096 ])
param instanceMemoryMB int = 512

@description('Flex Consumption: the most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption: instances kept warm for the HTTP functions (billed while idle); 0 for none.')
@minValue(0)
@maxValue(20)
param alwaysReadyInstances int = 0

@description('Days the attempt log and rejected events are kept: the containers\' TTL and DISPATCHER_RETENTION_DAYS.')
@minValue(1)
@maxValue(3650)
param retentionDays int = 30

@description('Cosmos DB serverless (billed per request) or provisioned autoscale throughput (up to 1000 RU/s).')
param cosmosServerless bool = true

@description('Give the app one fixed outbound address, for integrators who allowlist the sender: VNet integration through a NAT gateway with a static public IP (the output outboundIpAddress).')
param outboundIp bool = false

@description('Where alerts go (an email address): dead-lettered messages, a growing deliveries backlog, failed executions, Cosmos DB throttling. Empty: no alerts.')
param alertEmail string = ''

@description('The deliveries waiting in the deliveries queue above which the backlog alert fires.')
@minValue(1)
param backlogAlert int = 10000

@description('The Entra object id of who deploys (scripts/deploy-azure.sh passes the signed-in user\'s): it may write the vault\'s secrets, to store the encryption key. Empty: nobody is given that right here.')
param deployerObjectId string = ''

var suffix = uniqueString(resourceGroup().id, name)
var storageName = take('${name}st${suffix}', 24)
var eventsQueue = 'events'
var deliveriesQueue = 'deliveries'
var database = 'dispatcher'
var retentionSeconds = retentionDays * 86400
var flex = hostingPlan == 'FlexConsumption'
var deploymentContainer = 'app-package'

// Flex Consumption's runtime and scale, and where it takes the package from: a blob container reached with the
// app's identity (Storage Blob Data Owner, below), so that `func azure functionapp publish` needs no key.
var functionAppConfig = {
  deployment: {
    storage: {
      type: 'blobContainer'
      value: 'https://${storageName}.blob.${environment().suffixes.storage}/${deploymentContainer}'
      authentication: { type: 'SystemAssignedIdentity' }
    }
  }
  scaleAndConcurrency: {
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    alwaysReady: alwaysReadyInstances > 0 ? [ { name: 'http', instanceCount: alwaysReadyInstances } ] : []
  }
  runtime: { name: 'custom', version: '1.0' }
}

var plans = {
  FlexConsumption: { sku: { name: 'FC1', tier: 'FlexConsumption' }, kind: 'functionapp' }
  ElasticPremium: { sku: { name: 'EP1', tier: 'ElasticPremium' }, kind: 'elastic' }
  Dedicated: { sku: { name: 'P1v3', tier: 'PremiumV3' }, kind: 'linux' }
}

// Built-in roles (Azure RBAC and Cosmos DB's data-plane RBAC).
var roles = {
  serviceBusDataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  cosmosDataContributor: '00000000-0000-0000-0000-000000000002'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

// The key that seals webhook secrets at rest, in the vault: the app reads it through a Key Vault reference
// with its identity; scripts/deploy-azure.sh generates it on the first deployment and never replaces it.
var encryptionKeySecret = 'dispatcher-encryption-key'
// The operator's key (DISPATCHER_API_KEY), which the handler checks itself: the Api function is anonymous so that
// tenants' bearer tokens reach it (docs/azure-functions.md §4). Made and kept like the encryption key.
var operatorKeySecret = 'dispatcher-operator-key'
var alerts = !empty(alertEmail)

resource storage 'Microsoft.Storage/storageAccounts@2026-09-01' = {
  name: storageName
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
  }
}

resource packages 'Microsoft.Storage/storageAccounts/blobServices/containers@2026-09-01' = if (flex) {
  name: '${storage.name}/default/${deploymentContainer}'
  properties: { publicAccess: 'None' }
}

resource logs 'Microsoft.OperationalInsights/workspaces@2025-07-01' = {
  name: '${name}-logs-${suffix}'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${name}-insights-${suffix}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
  }
}

// Standard tier at least: scheduled messages (retries) and duplicate detection.
resource serviceBus 'Microsoft.ServiceBus/namespaces@2026-01-01' = {
  name: '${name}-bus-${suffix}'
  location: location
  sku: { name: 'Standard', tier: 'Standard' }
  properties: {
    minimumTlsVersion: '1.2'
    disableLocalAuth: true
  }
}

// Duplicate detection drops an event published twice under one Idempotency-Key.
resource events 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' = {
  parent: serviceBus
  name: eventsQueue
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    defaultMessageTimeToLive: 'P14D'
    deadLetteringOnMessageExpiration: true
  }
}

// A job's lock outlasts one attempt and its failure callback (two request timeouts); a retry is re-sent under
// a MessageId per attempt, which duplicate detection keys on; an expired job is dead-lettered, and
// OnDeliveryDeadLettered ends it.
resource deliveries 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' = {
  parent: serviceBus
  name: deliveriesQueue
  properties: {
    lockDuration: 'PT5M'
    maxDeliveryCount: 10
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    defaultMessageTimeToLive: 'P14D'
    deadLetteringOnMessageExpiration: true
  }
}

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2026-03-15' = {
  name: '${name}-cosmos-${suffix}'
  location: location
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: { defaultConsistencyLevel: 'Session' }
    locations: [ { locationName: location, failoverPriority: 0 } ]
    capabilities: cosmosServerless ? [ { name: 'EnableServerless' } ] : []
    disableLocalAuth: true
    minimalTlsVersion: 'Tls12'
  }
}

resource cosmosDatabase 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2026-03-15' = {
  parent: cosmos
  name: database
  properties: {
    resource: { id: database }
    options: cosmosServerless ? {} : { autoscaleSettings: { maxThroughput: 1000 } }
  }
}

// As handler/src/adapters/cosmos/mod.rs (CONTAINERS) creates them: a webhook's attempt log is one partition,
// paged newest first by the composite index.
resource webhooks 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2026-03-15' = {
  parent: cosmosDatabase
  name: 'webhooks'
  properties: {
    resource: {
      id: 'webhooks'
      partitionKey: { paths: [ '/id' ], kind: 'Hash' }
    }
  }
}

resource deliveryLog 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2026-03-15' = {
  parent: cosmosDatabase
  name: 'deliveries'
  properties: {
    resource: {
      id: 'deliveries'
      partitionKey: { paths: [ '/webhookId' ], kind: 'Hash' }
      defaultTtl: retentionSeconds
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: [ { path: '/*' } ]
        compositeIndexes: [
          [
            { path: '/createdAtMs', order: 'descending' }
            { path: '/id', order: 'descending' }
          ]
        ]
      }
    }
  }
}

resource rejectedEvents 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2026-03-15' = {
  parent: cosmosDatabase
  name: 'rejected-events'
  properties: {
    resource: {
      id: 'rejected-events'
      partitionKey: { paths: [ '/id' ], kind: 'Hash' }
      defaultTtl: retentionSeconds
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: [ { path: '/*' } ]
        compositeIndexes: [
          [
            { path: '/receivedAtMs', order: 'descending' }
            { path: '/id', order: 'descending' }
          ]
        ]
      }
    }
  }
}

// Each rate-limited webhook's next free slot, shared by every instance.
resource rateLimits 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2026-03-15' = {
  parent: cosmosDatabase
  name: 'rate-limits'
  properties: {
    resource: {
      id: 'rate-limits'
      partitionKey: { paths: [ '/id' ], kind: 'Hash' }
      defaultTtl: retentionSeconds
    }
  }
}

// Tenants and their tokens (hashes only), kept until deleted: a token's id is its item's id, so a presented token
// is one point read.
resource tenants 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2026-03-15' = {
  parent: cosmosDatabase
  name: 'tenants'
  properties: {
    resource: {
      id: 'tenants'
      partitionKey: { paths: [ '/id' ], kind: 'Hash' }
    }
  }
}

resource tokens 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2026-03-15' = {
  parent: cosmosDatabase
  name: 'tokens'
  properties: {
    resource: {
      id: 'tokens'
      partitionKey: { paths: [ '/id' ], kind: 'Hash' }
    }
  }
}

// The inbound sources (their secrets sealed by the handler), and the receipts that recognise a provider's repeat:
// each receipt sets its own ttl, the de-duplication window, under the container's.
resource sources 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2026-03-15' = {
  parent: cosmosDatabase
  name: 'sources'
  properties: {
    resource: {
      id: 'sources'
      partitionKey: { paths: [ '/id' ], kind: 'Hash' }
    }
  }
}

resource receipts 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2026-03-15' = {
  parent: cosmosDatabase
  name: 'receipts'
  properties: {
    resource: {
      id: 'receipts'
      partitionKey: { paths: [ '/id' ], kind: 'Hash' }
      defaultTtl: retentionSeconds
    }
  }
}

resource plan 'Microsoft.Web/serverfarms@2025-05-01' = {
  name: '${name}-plan-${suffix}'
  location: location
  sku: plans[hostingPlan].sku
  kind: plans[hostingPlan].kind
  properties: {
    reserved: true // Linux
    maximumElasticWorkerCount: hostingPlan == 'ElasticPremium' ? 20 : null
  }
}

// Azure Files, where Elastic Premium keeps the app's content, takes no identity: its connection string is the
// one key that plan needs. No data of the dispatcher goes through it.
var contentShare = hostingPlan != 'ElasticPremium' ? [] : [
  {
    name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING'
    value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};EndpointSuffix=${environment().suffixes.storage};AccountKey=${storage.listKeys().keys[0].value}'
  }
  { name: 'WEBSITE_CONTENTSHARE', value: toLower('${name}-${suffix}') }
]

resource app 'Microsoft.Web/sites@2025-05-01' = {
  name: '${name}-${suffix}'
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  // Flex Consumption deploys from the container: it must be there first.
  dependsOn: [ packages ]
  // Flex Consumption refuses `reserved`, `alwaysOn` and `ftpsState` (deprecated there): null leaves them out.
  properties: {
    serverFarmId: plan.id
    reserved: flex ? null : true
    httpsOnly: true
    functionAppConfig: flex ? functionAppConfig : null
    virtualNetworkSubnetId: outboundIp ? '${network.id}/subnets/app' : null
    siteConfig: {
      vnetRouteAllEnabled: outboundIp
      // A custom handler: no language stack (the `custom` runtime leaves linuxFxVersion empty).
      alwaysOn: flex ? null : hostingPlan == 'Dedicated'
      minimumElasticInstanceCount: hostingPlan == 'ElasticPremium' ? 1 : null
      minTlsVersion: '1.2'
      ftpsState: flex ? null : 'Disabled'
      // Flex Consumption refuses the runtime settings: functionAppConfig holds them.
      appSettings: concat(flex ? [] : [
        { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
        { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'custom' }
      ], [
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        // The triggers and the handler reach Service Bus with the identity (no connection string).
        { name: 'ServiceBusConnection__fullyQualifiedNamespace', value: '${serviceBus.name}.servicebus.windows.net' }
        { name: 'EVENTS_QUEUE', value: eventsQueue }
        { name: 'DELIVERIES_QUEUE', value: deliveriesQueue }
        // No COSMOSDB_KEY: the handler takes the identity's tokens (Cosmos DB data-plane RBAC).
        { name: 'COSMOSDB_ENDPOINT', value: cosmos.properties.documentEndpoint }
        { name: 'COSMOSDB_DATABASE', value: database }
        // The template creates them; data-plane roles cannot.
        { name: 'COSMOSDB_CREATE_IF_MISSING', value: 'false' }
        { name: 'DISPATCHER_RETENTION_DAYS', value: string(retentionDays) }
        { name: 'DISPATCHER_WEBHOOK_CACHE_SECONDS', value: '10' }
        { name: 'DISPATCHER_RETRY_SCHEDULE', value: '5s,30s,2m,10m,30m,1h,3h,6h,12h,24h' }
        { name: 'DISPATCHER_REQUEST_TIMEOUT', value: '15s' }
        { name: 'DISPATCHER_ALLOW_PRIVATE_TARGETS', value: 'false' }
        { name: 'DISPATCHER_LOG', value: 'info' }
        { name: 'DISPATCHER_LOG_FORMAT', value: 'json' }
        // Resolved by the platform with the identity; set by scripts/deploy-azure.sh on the first deployment.
        { name: 'DISPATCHER_ENCRYPTION_KEY', value: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${encryptionKeySecret})' }
        { name: 'DISPATCHER_API_KEY', value: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${operatorKeySecret})' }
      ], contentShare)
    }
  }
}

// Publishing takes an Entra token (az login), never the app's basic-auth publishing credentials: off.
resource noBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-05-01' = [for kind in [ 'scm', 'ftp' ]: {
  parent: app
  name: kind
  properties: { allow: false }
}]

// The identity's rights: on the namespace, Data Owner for the triggers (they receive, and the scale controller
// reads the queues' lengths, which needs the Manage right only Data Owner has) and Data Sender for the output
// binding, the handler's retries and API; the host's storage; read and write items in Cosmos DB.
resource receiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBus.id, app.id, roles.serviceBusDataOwner)
  scope: serviceBus
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataOwner)
  }
}

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBus.id, app.id, roles.serviceBusDataSender)
  scope: serviceBus
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}

resource hostStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]: {
  name: guid(storage.id, app.id, role)
  scope: storage
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
  }
}]

resource cosmosData 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2026-03-15' = {
  parent: cosmos
  name: guid(cosmos.id, app.id, roles.cosmosDataContributor)
  properties: {
    principalId: app.identity.principalId
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${roles.cosmosDataContributor}'
    scope: cosmos.id
  }
}

output functionApp string = app.name
output apiBase string = 'https://${app.properties.defaultHostName}/api/v1'
output serviceBusNamespace string = '${serviceBus.name}.servicebus.windows.net'
output cosmosEndpoint string = cosmos.properties.documentEndpoint
output principalId string = app.identity.principalId
output keyVault string = vault.name
output outboundIpAddress string = outboundIp ? outboundAddress.properties.ipAddress : ''

// Key Vault, RBAC mode: the app's identity reads secrets; the deployer may write them.
resource vault 'Microsoft.KeyVault/vaults@2026-05-15' = {
  name: '${name}-kv-${take(suffix, 8)}'
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
  }
}

resource vaultReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, app.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource vaultWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerObjectId)) {
  name: guid(vault.id, deployerObjectId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: deployerObjectId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}

// A fixed outbound address: every request the app makes leaves through the NAT gateway's static IP.
resource outboundAddress 'Microsoft.Network/publicIPAddresses@2026-03-01' = if (outboundIp) {
  name: '${name}-ip-${suffix}'
  location: location
  sku: { name: 'Standard' }
  properties: { publicIPAllocationMethod: 'Static', publicIPAddressVersion: 'IPv4' }
}

resource nat 'Microsoft.Network/natGateways@2026-03-01' = if (outboundIp) {
  name: '${name}-nat-${suffix}'
  location: location
  sku: { name: 'Standard' }
  properties: { publicIpAddresses: [ { id: outboundAddress.id } ], idleTimeoutInMinutes: 4 }
}

resource network 'Microsoft.Network/virtualNetworks@2026-03-01' = if (outboundIp) {
  name: '${name}-vnet-${suffix}'
  location: location
  properties: {
    addressSpace: { addressPrefixes: [ '10.20.0.0/16' ] }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: '10.20.0.0/24'
          natGateway: { id: nat.id }
          // Flex Consumption integrates through Container Apps environments' delegation, the others App Service's.
          delegations: [ { name: 'app', properties: { serviceName: flex ? 'Microsoft.App/environments' : 'Microsoft.Web/serverFarms' } } ]
        }
      }
    ]
  }
}

// Alerts, to `alertEmail`.
resource operators 'Microsoft.Insights/actionGroups@2023-01-01' = if (alerts) {
  name: '${name}-operators-${suffix}'
  location: 'Global'
  properties: {
    groupShortName: 'dispatcher'
    enabled: true
    emailReceivers: [ { name: 'operator', emailAddress: alertEmail, useCommonAlertSchema: true } ]
  }
}

var metricAlerts = [
  {
    name: 'dead-lettered'
    description: 'A message was dead-lettered in the events or deliveries queue: an event that could not be routed, or a job Service Bus gave up.'
    scope: serviceBus.id
    namespace: 'Microsoft.ServiceBus/namespaces'
    metric: 'DeadletteredMessages'
    dimensions: [ { name: 'EntityName', operator: 'Include', values: [ eventsQueue, deliveriesQueue ] } ]
    aggregation: 'Maximum'
    threshold: 0
    severity: 1
  }
  {
    name: 'deliveries-backlog'
    description: 'More deliveries wait in the deliveries queue than backlogAlert: receivers slow or failing, or the app not keeping up.'
    scope: serviceBus.id
    namespace: 'Microsoft.ServiceBus/namespaces'
    metric: 'ActiveMessages'
    dimensions: [ { name: 'EntityName', operator: 'Include', values: [ deliveriesQueue ] } ]
    aggregation: 'Average'
    threshold: backlogAlert
    severity: 2
  }
  {
    name: 'failed-executions'
    description: 'Function executions failed (Cosmos DB or Service Bus unreachable, or the handler down): Service Bus delivers their messages again.'
    scope: insights.id
    namespace: 'microsoft.insights/components'
    metric: 'requests/failed'
    dimensions: []
    aggregation: 'Count'
    threshold: 10
    severity: 2
  }
  {
    name: 'cosmos-throttled'
    description: 'Cosmos DB answered 429: the account is at its throughput; the handler waits and tries again.'
    scope: cosmos.id
    namespace: 'Microsoft.DocumentDB/databaseAccounts'
    metric: 'TotalRequests'
    dimensions: [ { name: 'StatusCode', operator: 'Include', values: [ '429' ] } ]
    aggregation: 'Count'
    threshold: 10
    severity: 3
  }
]

resource alert 'Microsoft.Insights/metricAlerts@2018-03-01' = [for a in metricAlerts: if (alerts) {
  name: '${name}-${a.name}-${suffix}'
  location: 'global'
  properties: {
    description: a.description
    severity: a.severity
    enabled: true
    scopes: [ a.scope ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: a.name
          metricNamespace: a.namespace
          metricName: a.metric
          dimensions: a.dimensions
          operator: 'GreaterThan'
          threshold: a.threshold
          timeAggregation: a.aggregation
        }
      ]
    }
    actions: [ { actionGroupId: operators.id } ]
  }
}]
