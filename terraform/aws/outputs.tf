output "role_arn" {
  description = "IRSA role of the controller: annotate the ServiceAccount with eks.amazonaws.com/role-arn=<this> (deploy/aws does)."
  value       = aws_iam_role.controller.arn
}

output "policy_arn" {
  description = "The controller's policy (every action lbprov's AWS provider calls)."
  value       = aws_iam_policy.controller.arn
}

output "policy_json" {
  description = "The controller's policy document."
  value       = data.aws_iam_policy_document.controller.json
}

output "read_only_policy_arn" {
  description = "Read-only policy for `lbprov plan`: attach it to whoever runs the dry run."
  value       = aws_iam_policy.read_only.arn
}

output "read_only_policy_json" {
  description = "The read-only policy document."
  value       = data.aws_iam_policy_document.read_only.json
}

output "read_only_role_arn" {
  description = "Read-only role for `lbprov plan` (null unless read_only_trusted_principal_arns is set)."
  value       = length(aws_iam_role.read_only) > 0 ? aws_iam_role.read_only[0].arn : null
}

output "actions" {
  description = "Every IAM action the controller's policy allows."
  value       = sort(distinct(concat(local.read_actions, local.create_actions, local.owned_write_actions, local.write_actions, local.tag_on_create_actions)))
}

output "read_only_actions" {
  description = "Every IAM action the read-only policy allows."
  value       = sort(local.read_actions)
}
