variable "cluster_name" {
  description = "Kubernetes cluster name, as given to lbprov (LBPROV_CLUSTER_NAME); used in the names of the role and identity."
  type        = string
}

variable "scope" {
  description = "Resource ID the role is defined for and assigned at: the resource group that holds the cluster's nodes, network and load balancers (AKS: the node resource group, MC_...), e.g. /subscriptions/<sub>/resourceGroups/<rg>."
  type        = string

  validation {
    condition     = can(regex("^/subscriptions/[^/]+(/resourceGroups/[^/]+)?$", var.scope))
    error_message = "scope must be /subscriptions/<id> or /subscriptions/<id>/resourceGroups/<name>."
  }
}

variable "identity_resource_group_name" {
  description = "Resource group in which to create the user-assigned managed identity."
  type        = string
}

variable "location" {
  description = "Azure region of the managed identity."
  type        = string
}

variable "oidc_issuer_url" {
  description = "The cluster's service-account token issuer (AKS: azurerm_kubernetes_cluster.<x>.oidc_issuer_url, with oidc_issuer_enabled and workload_identity_enabled)."
  type        = string
}

variable "namespace" {
  description = "Namespace of the controller's ServiceAccount (deploy/base uses lbprov-system)."
  type        = string
  default     = "lbprov-system"
}

variable "service_account" {
  description = "Name of the controller's ServiceAccount (deploy/base uses lbprov)."
  type        = string
  default     = "lbprov"
}

variable "name" {
  description = "Name of the identity and prefix of the role names; defaults to lbprov-<cluster_name>."
  type        = string
  default     = null
}

variable "read_only_principal_ids" {
  description = "Object IDs of users, groups or service principals granted the read-only role for `lbprov plan`."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for the managed identity."
  type        = map(string)
  default     = {}
}
