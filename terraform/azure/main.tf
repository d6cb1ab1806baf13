# Azure identity for the lbprov Azure provider: a custom role with exactly the actions the provider
# needs (tests/deploy/test_least_privilege.py proves the lists below against the operations
# CloudCalls records while the provider runs its scenarios in the ARM sandbox), a user-assigned
# managed identity, its federated credential for the controller's ServiceAccount (Azure Workload
# Identity) and the role assignment; and a read-only custom role for `lbprov plan`.

locals {
  name = coalesce(var.name, "lbprov-${var.cluster_name}")

  # ---- The permission lists: the one place to read what lbprov may do. ----------------------
  # Reads: the shared load balancers, public IPs, the cluster NSG and its rules, and the status of
  # long-running operations. These alone make the read-only role of `lbprov plan`.
  read_actions = [
    "Microsoft.Network/loadBalancers/read",
    "Microsoft.Network/locations/operations/read",
    "Microsoft.Network/networkSecurityGroups/read",
    "Microsoft.Network/networkSecurityGroups/securityRules/read",
    "Microsoft.Network/publicIPAddresses/read",
  ]

  # Writes: the load balancers (frontends, rules, probes and the backend pool are parts of them),
  # their public IPs and the NSG's allow rules.
  write_actions = [
    "Microsoft.Network/loadBalancers/delete",
    "Microsoft.Network/loadBalancers/write",
    "Microsoft.Network/networkSecurityGroups/securityRules/delete",
    "Microsoft.Network/networkSecurityGroups/securityRules/write",
    "Microsoft.Network/publicIPAddresses/delete",
    "Microsoft.Network/publicIPAddresses/write",
  ]

  # "Join" actions: no request is sent for them, but ARM checks them on the write that references
  # the resource -- on the load balancer PUT: a frontend's public IP, an internal frontend's subnet,
  # and the VNet of the IP-based backend pool; on the public IP PUT: the prefix of
  # service.beta.kubernetes.io/azure-pip-prefix-id ("Create a public IP address from a prefix",
  # learn.microsoft.com "Create, change, or delete an Azure public IP address prefix", Permissions;
  # without it ARM answers 403 LinkedAuthorizationFailed: kubernetes-sigs/cloud-provider-azure#7500)
  # (lbprov_azure.operations.JOIN_PERMISSIONS; joinLoadBalancer is what Azure documents for
  # IP-based backend pools). Like every action here, they apply within `scope`.
  join_actions = [
    "Microsoft.Network/publicIPAddresses/join/action",
    "Microsoft.Network/publicIPPrefixes/join/action",
    "Microsoft.Network/virtualNetworks/join/action",
    "Microsoft.Network/virtualNetworks/joinLoadBalancer/action",
    "Microsoft.Network/virtualNetworks/subnets/join/action",
  ]
}

resource "azurerm_role_definition" "controller" {
  name              = "${local.name}-controller"
  scope             = var.scope
  description       = "lbprov controller for cluster ${var.cluster_name}: load balancers for Services of type LoadBalancer"
  assignable_scopes = [var.scope]

  permissions {
    actions = sort(distinct(concat(local.read_actions, local.write_actions, local.join_actions)))
  }
}

resource "azurerm_role_definition" "read_only" {
  name              = "${local.name}-read-only"
  scope             = var.scope
  description       = "lbprov plan (dry run) for cluster ${var.cluster_name}: reads only"
  assignable_scopes = [var.scope]

  permissions {
    actions = sort(local.read_actions)
  }
}

resource "azurerm_user_assigned_identity" "controller" {
  name                = local.name
  resource_group_name = var.identity_resource_group_name
  location            = var.location
  tags                = var.tags
}

# Azure Workload Identity: tokens of the controller's ServiceAccount, issued by the cluster, are
# exchanged for this identity's tokens.
resource "azurerm_federated_identity_credential" "controller" {
  name                = "${local.name}-${var.namespace}-${var.service_account}"
  resource_group_name = var.identity_resource_group_name
  parent_id           = azurerm_user_assigned_identity.controller.id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = var.oidc_issuer_url
  subject             = "system:serviceaccount:${var.namespace}:${var.service_account}"
}

resource "azurerm_role_assignment" "controller" {
  scope              = var.scope
  role_definition_id = azurerm_role_definition.controller.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.controller.principal_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_assignment" "read_only" {
  for_each           = toset(var.read_only_principal_ids)
  scope              = var.scope
  role_definition_id = azurerm_role_definition.read_only.role_definition_resource_id
  principal_id       = each.value
}
