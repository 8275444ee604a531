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
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  cosmosDataContributor: '00000000-0000-0000-0000-000000000002'
}

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
  properties: {
    serverFarmId: plan.id
    reserved: true
    httpsOnly: true
    functionAppConfig: flex ? functionAppConfig : null
    siteConfig: {
      // A custom handler: no language stack (the `custom` runtime leaves linuxFxVersion empty).
      alwaysOn: hostingPlan == 'Dedicated'
      minimumElasticInstanceCount: hostingPlan == 'ElasticPremium' ? 1 : null
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
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
      ], contentShare)
    }
  }
}

// The identity's rights: receive (triggers) and send (the output binding, the handler's retries and API) on
// the namespace; the host's storage; read and write items in Cosmos DB.
resource receiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBus.id, app.id, roles.serviceBusDataReceiver)
  scope: serviceBus
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
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
