# IAM for the lbprov GCP provider: a custom role with exactly the permissions the provider needs
# (tests/deploy/test_least_privilege.py proves the lists below against the operations CloudCalls
# records while the provider runs its scenarios in the GCE sandbox), a Google service account that
# holds it, the GKE workload-identity binding for the controller's Kubernetes ServiceAccount, and
# a read-only custom role for `lbprov plan`.

locals {
  suffix     = replace(var.cluster_name, "-", "_")
  account_id = coalesce(var.account_id, substr("lbprov-${var.cluster_name}", 0, 30))
  wi_pool    = coalesce(var.workload_identity_pool, "${var.project_id}.svc.id.goog")

  # ---- The permission lists: the one place to read what lbprov may do. ----------------------
  # Reads: the load-balancer resources, the cluster's instance groups and the state of long-running
  # operations (every write is waited on). These alone make the read-only role of `lbprov plan`.
  read_permissions = [
    "compute.addresses.get",
    "compute.addresses.list",
    "compute.firewalls.get",
    "compute.firewalls.list",
    "compute.forwardingRules.list",
    "compute.globalOperations.get",
    "compute.httpHealthChecks.list",
    "compute.instanceGroups.get",
    "compute.instanceGroups.list",
    "compute.instances.list",
    "compute.regionBackendServices.list",
    "compute.regionHealthChecks.get",
    "compute.regionHealthChecks.list",
    "compute.regionOperations.get",
    "compute.targetPools.list",
    "compute.zoneOperations.get",
  ]

  # Writes: create, update and delete of what lbprov owns, plus the permissions GCP checks when one
  # resource references another ("use": a backend service its instance groups and health check, a
  # forwarding rule its backend service, address and subnetwork, an instance group its instances;
  # networks.updatePolicy: a firewall rule on the network). Internal addresses have their own
  # create/delete permissions. targetPools and httpHealthChecks: cloud-provider-gcp's load balancer
  # of a Service that lbprov takes over is deleted (lbprov never creates either).
  write_permissions = [
    "compute.addresses.create",
    "compute.addresses.createInternal",
    "compute.addresses.delete",
    "compute.addresses.deleteInternal",
    "compute.addresses.setLabels",
    "compute.addresses.use",
    "compute.firewalls.create",
    "compute.firewalls.delete",
    "compute.firewalls.update",
    "compute.forwardingRules.create",
    "compute.forwardingRules.delete",
    "compute.forwardingRules.setLabels",
    "compute.forwardingRules.update",
    "compute.httpHealthChecks.delete",
    "compute.instanceGroups.create",
    "compute.instanceGroups.update",
    "compute.instanceGroups.use",
    "compute.instances.use",
    "compute.networks.updatePolicy",
    "compute.regionBackendServices.create",
    "compute.regionBackendServices.delete",
    "compute.regionBackendServices.update",
    "compute.regionBackendServices.use",
    "compute.regionHealthChecks.create",
    "compute.regionHealthChecks.delete",
    "compute.regionHealthChecks.update",
    "compute.regionHealthChecks.useReadOnly",
    "compute.subnetworks.use",
    "compute.targetPools.delete",
  ]
}

resource "google_project_iam_custom_role" "controller" {
  project     = var.project_id
  role_id     = "lbprov_${local.suffix}"
  title       = "lbprov controller (${var.cluster_name})"
  description = "Load balancers for Kubernetes Services of type LoadBalancer in cluster ${var.cluster_name}"
  permissions = sort(distinct(concat(local.read_permissions, local.write_permissions)))
}

resource "google_project_iam_custom_role" "read_only" {
  project     = var.project_id
  role_id     = "lbprov_${local.suffix}_read_only"
  title       = "lbprov plan, read-only (${var.cluster_name})"
  description = "Dry run of lbprov (lbprov plan) for cluster ${var.cluster_name}: reads only"
  permissions = sort(local.read_permissions)
}

resource "google_service_account" "controller" {
  project      = var.project_id
  account_id   = local.account_id
  display_name = "lbprov controller (${var.cluster_name})"
  description  = "Workload identity of the lbprov controller (${var.namespace}/${var.service_account})"
}

resource "google_project_iam_member" "controller" {
  project = var.project_id
  role    = google_project_iam_custom_role.controller.id
  member  = google_service_account.controller.member
}

# GKE workload identity: only the controller's Kubernetes ServiceAccount may act as the GSA.
resource "google_service_account_iam_member" "workload_identity" {
  service_account_id = google_service_account.controller.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.wi_pool}[${var.namespace}/${var.service_account}]"
}

resource "google_project_iam_member" "read_only" {
  for_each = toset(var.read_only_members)
  project  = var.project_id
  role     = google_project_iam_custom_role.read_only.id
  member   = each.value
}
