output "client_id" {
  description = "Client ID of the managed identity: annotate the ServiceAccount with azure.workload.identity/client-id=<this> (deploy/azure does)."
  value       = azurerm_user_assigned_identity.controller.client_id
}

output "tenant_id" {
  description = "Tenant of the managed identity (azure.workload.identity/tenant-id, if the cluster's default differs)."
  value       = azurerm_user_assigned_identity.controller.tenant_id
}

output "principal_id" {
  description = "Object ID of the managed identity's service principal."
  value       = azurerm_user_assigned_identity.controller.principal_id
}

output "role_definition_id" {
  description = "The controller's custom role definition."
  value       = azurerm_role_definition.controller.role_definition_resource_id
}

output "read_only_role_definition_id" {
  description = "Read-only custom role for `lbprov plan`: assign it to whoever runs the dry run."
  value       = azurerm_role_definition.read_only.role_definition_resource_id
}

output "actions" {
  description = "Every action of the controller's role."
  value       = sort(distinct(concat(local.read_actions, local.write_actions, local.join_actions)))
}

output "read_only_actions" {
  description = "Every action of the read-only role."
  value       = sort(local.read_actions)
}
