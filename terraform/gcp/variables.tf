variable "project_id" {
  description = "Project that holds the cluster's nodes and where lbprov creates load balancers (the GKE workload-identity pool is <project_id>.svc.id.goog)."
  type        = string
}

variable "cluster_name" {
  description = "Kubernetes cluster name, as given to lbprov (LBPROV_CLUSTER_NAME); used in the names of the role and service account."
  type        = string
}

variable "namespace" {
  description = "Namespace of the controller's Kubernetes ServiceAccount (deploy/base uses lbprov-system)."
  type        = string
  default     = "lbprov-system"
}

variable "service_account" {
  description = "Name of the controller's Kubernetes ServiceAccount (deploy/base uses lbprov)."
  type        = string
  default     = "lbprov"
}

variable "workload_identity_pool" {
  description = "Workload-identity pool of the cluster; defaults to <project_id>.svc.id.goog (GKE). Set it when the cluster lives in another project."
  type        = string
  default     = null
}

variable "account_id" {
  description = "Account ID (the part before @) of the Google service account; defaults to lbprov-<cluster_name>, cut to 30 characters."
  type        = string
  default     = null
}

variable "read_only_members" {
  description = "IAM members (user:, group:, serviceAccount:) granted the read-only role for `lbprov plan`."
  type        = list(string)
  default     = []
}
