variable "cluster_name" {
  description = "Kubernetes cluster name, as given to lbprov (LBPROV_CLUSTER_NAME). Scopes the write permissions to resources tagged kubernetes.io/cluster/<cluster_name>=owned."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (EKS: aws_iam_openid_connect_provider.<x>.arn), e.g. arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B716D3041E."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$", var.oidc_provider_arn))
    error_message = "oidc_provider_arn must be an IAM OIDC provider ARN (arn:aws:iam::<account>:oidc-provider/<issuer>)."
  }
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
  description = "Name of the IAM role and policy; defaults to lbprov-<cluster_name>."
  type        = string
  default     = null
}

variable "path" {
  description = "IAM path for the role and policies."
  type        = string
  default     = "/"
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary for the roles."
  type        = string
  default     = null
}

variable "read_only_trusted_principal_arns" {
  description = "IAM principals (users/roles) allowed to assume the read-only role for `lbprov plan`. Empty: the read-only policy is created but no role."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for the IAM resources."
  type        = map(string)
  default     = {}
}
