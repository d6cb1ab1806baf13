output "service_account_email" {
  description = "Google service account of the controller: annotate the Kubernetes ServiceAccount with iam.gke.io/gcp-service-account=<this> (deploy/gcp does)."
  value       = google_service_account.controller.email
}

output "role_id" {
  description = "The controller's custom role (projects/<project>/roles/<id>)."
  value       = google_project_iam_custom_role.controller.id
}

output "read_only_role_id" {
  description = "Read-only custom role for `lbprov plan`: grant it to whoever runs the dry run."
  value       = google_project_iam_custom_role.read_only.id
}

output "permissions" {
  description = "Every permission of the controller's role."
  value       = google_project_iam_custom_role.controller.permissions
}

output "read_only_permissions" {
  description = "Every permission of the read-only role."
  value       = google_project_iam_custom_role.read_only.permissions
}
