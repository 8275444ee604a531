"""Checks every resource of an ARM template (infra/main.json) against the Azure management SDK's models of the
API version it names: a property the model does not know is an error, as Azure would refuse it or, worse,
ignore it. Expressions (`[...]`) are not evaluated: a value that is one is taken as valid, its key still checked.

Usage: check.py TEMPLATE  (exit 1 and one line per problem, each with the resource and the property's path)
"""

import importlib
import json
import sys
import typing

# Resource type -> (package, model of the PUT body). A resource type not listed is an error: add it here.
MODELS = {
    "Microsoft.Storage/storageAccounts": ("azure.mgmt.storage", "StorageAccountCreateParameters"),
    "Microsoft.Storage/storageAccounts/blobServices/containers": ("azure.mgmt.storage", "BlobContainer"),
    "Microsoft.OperationalInsights/workspaces": ("azure.mgmt.loganalytics", "Workspace"),
    "Microsoft.Insights/components": ("azure.mgmt.applicationinsights", "ApplicationInsightsComponent"),
    "Microsoft.ServiceBus/namespaces": ("azure.mgmt.servicebus", "SBNamespace"),
    "Microsoft.ServiceBus/namespaces/queues": ("azure.mgmt.servicebus", "SBQueue"),
    "Microsoft.DocumentDB/databaseAccounts": ("azure.mgmt.cosmosdb", "DatabaseAccountCreateUpdateParameters"),
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases": ("azure.mgmt.cosmosdb", "SqlDatabaseCreateUpdateParameters"),
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers": (
        "azure.mgmt.cosmosdb",
        "SqlContainerCreateUpdateParameters",
    ),
    "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments": (
        "azure.mgmt.cosmosdb",
        "SqlRoleAssignmentCreateUpdateParameters",
    ),
    "Microsoft.Web/serverfarms": ("azure.mgmt.web", "AppServicePlan"),
    "Microsoft.Web/sites": ("azure.mgmt.web", "Site"),
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": ("azure.mgmt.web", "CsmPublishingCredentialsPoliciesEntity"),
    "Microsoft.Authorization/roleAssignments": ("azure.mgmt.authorization", "RoleAssignmentCreateParameters"),
    "Microsoft.KeyVault/vaults": ("azure.mgmt.keyvault", "VaultCreateOrUpdateParameters"),
    "Microsoft.ManagedIdentity/userAssignedIdentities": ("azure.mgmt.msi", "Identity"),
    # Packages that model several API versions, one per operation group: the version is named here.
    "Microsoft.Insights/actionGroups": ("azure.mgmt.monitor", "ActionGroupResource", "2023-01-01"),
    "Microsoft.Insights/metricAlerts": ("azure.mgmt.monitor", "MetricAlertResource", "2018-03-01"),
    "Microsoft.Network/publicIPAddresses": ("azure.mgmt.network", "PublicIPAddress", "2026-03-01"),
    "Microsoft.Network/natGateways": ("azure.mgmt.network", "NatGateway", "2026-03-01"),
    "Microsoft.Network/virtualNetworks": ("azure.mgmt.network", "VirtualNetwork", "2026-03-01"),
}

# What ARM itself reads of a resource, not its provider.
ARM_KEYS = {"type", "apiVersion", "name", "dependsOn", "condition", "copy", "scope", "comments", "metadata"}


def models_of(package, api_version, modeled=None):
    """The models module of `package` for `api_version` (the one it models for this type, when given), or why
    there is none."""
    module = importlib.import_module(package)
    if modeled is not None:
        if modeled == api_version:
            return importlib.import_module(f"{package}.models"), None
        return None, f"the installed {package} models this type at API version {modeled}, not {api_version}"
    versioned = api_version.replace("-", "_")
    try:
        return importlib.import_module(f"{package}.v{versioned}.models"), None
    except ModuleNotFoundError:
        pass
    configuration = importlib.import_module(f"{package}._configuration")
    source = open(configuration.__file__).read()
    marker = 'kwargs.pop("api_version", "'
    modeled = source.split(marker, 1)[1].split('"', 1)[0] if marker in source else None
    if modeled == api_version:
        return importlib.import_module(f"{package}.models"), None
    return None, f"the installed {package} models API version {modeled}, not {api_version} ({module.__name__})"


class Fields:
    """The JSON fields of one model class: name -> type (a model class, a list or dict of one, or a scalar)."""

    def __init__(self, cls, models):
        self.cls = cls
        self.fields = {}
        if hasattr(cls, "_attribute_map"):  # msrest models: dotted keys are flattened properties
            for attr, spec in cls._attribute_map.items():
                if spec["key"] == "":
                    continue  # additional_properties: Azure would take any key, and ignore a misspelt one
                node = self.fields
                parts = spec["key"].replace("\\.", "\0").split(".")
                for part in parts[:-1]:
                    node = node.setdefault(part.replace("\0", "."), {})
                node[parts[-1].replace("\0", ".")] = ("msrest", spec["type"], models)
        else:  # TypeSpec models
            instance = cls.__new__(cls)
            rest_fields = getattr(instance, "_attr_to_rest_field", None) or getattr(cls, "_attr_to_rest_field", {})
            hints = typing.get_type_hints(cls, globalns={**vars(sys.modules[cls.__module__]), "_models": models})
            for attr, field in rest_fields.items():
                self.fields[field._rest_name] = ("hint", hints.get(attr), models)


def resolve(kind):
    """('model', cls) | ('list', kind) | ('dict', kind) | ('scalar',) | ('object', fields) for a field's type."""
    if isinstance(kind, dict):
        return ("object", kind)
    style, spec, models = kind
    if style == "msrest":
        if spec.startswith("[") and spec.endswith("]"):
            return ("list", ("msrest", spec[1:-1], models))
        if spec.startswith("{") and spec.endswith("}"):
            return ("dict", ("msrest", spec[1:-1], models))
        cls = getattr(models, spec, None)
        if isinstance(cls, type) and (hasattr(cls, "_attribute_map") or hasattr(cls, "_attr_to_rest_field")):
            return ("model", cls)
        return ("scalar",)
    hint = spec
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin is typing.Union:
        models_in = [a for a in args if isinstance(a, type) and hasattr(a, "__mro__") and "Model" in {b.__name__ for b in a.__mro__}]
        containers = [a for a in args if typing.get_origin(a) in (list, dict)]
        if models_in:
            return ("model", models_in[0])
        if containers:
            return resolve(("hint", containers[0], models))
        return ("scalar",)
    if origin is list:
        return ("list", ("hint", args[0], models)) if args else ("scalar",)
    if origin is dict:
        return ("dict", ("hint", args[1], models)) if len(args) == 2 else ("scalar",)
    if isinstance(hint, type) and "Model" in {b.__name__ for b in hint.__mro__[1:]}:
        return ("model", hint)
    return ("scalar",)


def variable_of(value):
    """The template variable an expression stands for, when it is one (`[variables('x')]`) or one or nothing
    (`[if(condition, variables('x'), null())]`): its value is checked in its place."""
    inner = value[1:-1].strip()
    if inner.startswith("variables('") and inner.endswith("')") and inner.count("(") == 1:
        return inner[len("variables('") : -2]
    if inner.startswith("if(") and inner.endswith(", null())"):
        candidate = inner[: -len(", null())")].rsplit(", ", 1)[-1]
        if candidate.startswith("variables('") and candidate.endswith("')"):
            return candidate[len("variables('") : -2]
    return None


VARIABLES = {}


def subtype(cls, value, models):
    """The subclass a discriminator in `value` names (`odata.type`, `criterionType`), or `cls`."""
    for attr, subtypes in getattr(cls, "_subtype_map", {}).items():
        key = cls._attribute_map[attr]["key"].replace("\\.", ".")
        named = value.get(key) if isinstance(value, dict) else None
        found = getattr(models, subtypes[named]) if named in subtypes else cls
        if found is not cls:
            return subtype(found, value, models)
    return cls


def check(value, kind, path, models, problems):
    if isinstance(value, str) and value.startswith("[") and not value.startswith("[["):
        name = variable_of(value)
        if name is not None and name in VARIABLES:
            check(VARIABLES[name], kind, f"{path}(variables('{name}'))", models, problems)
        return  # otherwise an ARM expression, evaluated at deployment
    shape = resolve(kind)
    if shape[0] == "model":
        check_object(value, Fields(subtype(shape[1], value, models), models).fields, path, models, problems)
    elif shape[0] == "object":
        check_object(value, shape[1], path, models, problems)
    elif shape[0] == "list":
        if isinstance(value, list):
            for i, item in enumerate(value):
                check(item, shape[1], f"{path}[{i}]", models, problems)
        elif not isinstance(value, str):
            problems.append(f"{path}: an array is expected")
    elif shape[0] == "dict" and isinstance(value, dict):
        for key, item in value.items():
            check(item, shape[1], f"{path}.{key}", models, problems)


def check_object(value, fields, path, models, problems):
    if not isinstance(value, dict):
        if not isinstance(value, str):
            problems.append(f"{path}: an object is expected")
        return
    for key, item in value.items():
        if key not in fields:
            known = ", ".join(sorted(fields)) or "nothing"
            problems.append(f"{path}.{key}: not a property of this API version (it knows {known})")
            continue
        check(item, fields[key], f"{path}.{key}", models, problems)


def main(path):
    template = json.load(open(path))
    VARIABLES.update(template.get("variables", {}))
    resources = template["resources"]
    resources = resources.values() if isinstance(resources, dict) else resources
    problems = []
    for resource in resources:
        kind, api_version = resource["type"], resource["apiVersion"]
        where = f"{kind}@{api_version}"
        if kind not in MODELS:
            problems.append(f"{where}: no SDK model is known for this type (add it to MODELS in check.py)")
            continue
        package, model, *modeled = MODELS[kind]
        models, why = models_of(package, api_version, *modeled)
        if models is None:
            problems.append(f"{where}: {why}")
            continue
        body = {k: v for k, v in resource.items() if k not in ARM_KEYS}
        check(body, ("msrest", model, models) if hasattr(getattr(models, model), "_attribute_map") else ("hint", getattr(models, model), models), where, models, problems)
    for problem in problems:
        print(problem)
    print(f"{len(resources)} resources checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
