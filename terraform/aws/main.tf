# IAM for the lbprov AWS provider: one policy with exactly the actions the provider calls
# (tests/deploy/test_least_privilege.py proves the lists below against the operations CloudCalls
# records while the provider runs its scenarios in the moto sandbox), an IRSA role for the
# controller's ServiceAccount, and a read-only policy for `lbprov plan`.

locals {
  name        = coalesce(var.name, "lbprov-${var.cluster_name}")
  oidc_issuer = element(split("oidc-provider/", var.oidc_provider_arn), 1)
  cluster_tag = "kubernetes.io/cluster/${var.cluster_name}"

  # ---- The permission lists: the one place to read what lbprov may do. ----------------------
  # Reads: discovery (instances, subnets, VPCs, security groups) and the load balancers' state.
  # These alone make the read-only policy of `lbprov plan`.
  read_actions = [
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInstances",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
  ]

  # Creates of load balancers (NLB and classic) and target groups: only when the request tags the
  # new resource kubernetes.io/cluster/<cluster_name>=owned.
  create_actions = [
    "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:CreateTargetGroup",
  ]

  # Tagging as part of a create (Tags= / TagSpecifications= are authorised as these actions too):
  # allowed only within CreateLoadBalancer/CreateTargetGroup and CreateSecurityGroup.
  tag_on_create_actions = [
    "ec2:CreateTags",
    "elasticloadbalancing:AddTags",
  ]

  # Changes and deletes: only of resources tagged as this cluster's (NLBs, classic ELBs, target
  # groups, and the security groups lbprov creates for classic ELBs).
  owned_write_actions = [
    "ec2:DeleteSecurityGroup",
    "elasticloadbalancing:AddTags",
    "elasticloadbalancing:ApplySecurityGroupsToLoadBalancer",
    "elasticloadbalancing:AttachLoadBalancerToSubnets",
    "elasticloadbalancing:ConfigureHealthCheck",
    "elasticloadbalancing:CreateLoadBalancerListeners",
    "elasticloadbalancing:CreateLoadBalancerPolicy",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:DeleteLoadBalancerListeners",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
    "elasticloadbalancing:DeregisterTargets",
    "elasticloadbalancing:DetachLoadBalancerFromSubnets",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:ModifyTargetGroupAttributes",
    "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:RemoveTags",
    "elasticloadbalancing:SetSecurityGroups",
    "elasticloadbalancing:SetIpAddressType",
    "elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
    "elasticloadbalancing:SetSubnets",
  ]

  # Tags added to an existing security group: the classic ELB group that cloud-provider-aws made
  # for a Service (adopted in place) or that an older lbprov made (the cluster identity). Only on
  # security groups already tagged kubernetes.io/cluster/<cluster_name>=owned, and only lbprov's
  # own keys and kubernetes.io/service-name: a foreign group, or the ownership tag, cannot be tagged.
  owned_tag_actions = [
    "ec2:CreateTags",
  ]

  # Writes that cannot carry the ownership condition: NLB listeners (authorised on the listener,
  # which has no tags of its own), the classic ELB's security group create (tagged on create, see
  # above), and the ingress rules lbprov adds to the nodes' security group (not lbprov's own),
  # including taking over cloud-provider-aws's rules for an adopted NLB (their descriptions).
  write_actions = [
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CreateSecurityGroup",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:ModifyListener",
  ]
}

data "aws_iam_policy_document" "controller" {
  statement {
    sid       = "Read"
    effect    = "Allow"
    actions   = local.read_actions
    resources = ["*"]
  }

  statement {
    sid       = "CreateOwned"
    effect    = "Allow"
    actions   = local.create_actions
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.cluster_tag}"
      values   = ["owned"]
    }
  }

  statement {
    sid       = "TagOnCreateELB"
    effect    = "Allow"
    actions   = [for a in local.tag_on_create_actions : a if startswith(a, "elasticloadbalancing:")]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "elasticloadbalancing:CreateAction"
      values   = [for a in local.create_actions : trimprefix(a, "elasticloadbalancing:")]
    }
  }

  statement {
    sid       = "TagOnCreateEC2"
    effect    = "Allow"
    actions   = [for a in local.tag_on_create_actions : a if startswith(a, "ec2:")]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateSecurityGroup"]
    }
  }

  statement {
    sid       = "ChangeOwned"
    effect    = "Allow"
    actions   = local.owned_write_actions
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.cluster_tag}"
      values   = ["owned"]
    }
  }

  statement {
    sid       = "TagOwnedSecurityGroups"
    effect    = "Allow"
    actions   = local.owned_tag_actions
    resources = ["arn:*:ec2:*:*:security-group/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.cluster_tag}"
      values   = ["owned"]
    }
    condition {
      test     = "ForAllValues:StringLike"
      variable = "aws:TagKeys"
      values   = ["lbprov.io/*", "kubernetes.io/service-name"]
    }
  }

  statement {
    sid       = "Write"
    effect    = "Allow"
    actions   = local.write_actions
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "read_only" {
  statement {
    sid       = "Read"
    effect    = "Allow"
    actions   = local.read_actions
    resources = ["*"]
  }
}

resource "aws_iam_policy" "controller" {
  name        = local.name
  path        = var.path
  description = "lbprov controller for cluster ${var.cluster_name}: load balancers for Services of type LoadBalancer"
  policy      = data.aws_iam_policy_document.controller.json
  tags        = var.tags
}

resource "aws_iam_policy" "read_only" {
  name        = "${local.name}-read-only"
  path        = var.path
  description = "lbprov plan (dry run) for cluster ${var.cluster_name}: reads only"
  policy      = data.aws_iam_policy_document.read_only.json
  tags        = var.tags
}

# IRSA: only the controller's ServiceAccount, through the cluster's OIDC provider, may assume it.
data "aws_iam_policy_document" "irsa_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${var.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "controller" {
  name                 = local.name
  path                 = var.path
  description          = "lbprov controller (IRSA: ${var.namespace}/${var.service_account})"
  assume_role_policy   = data.aws_iam_policy_document.irsa_trust.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "controller" {
  role       = aws_iam_role.controller.name
  policy_arn = aws_iam_policy.controller.arn
}

# Optional role for people or CI running `lbprov plan` against the account.
data "aws_iam_policy_document" "read_only_trust" {
  count = length(var.read_only_trusted_principal_arns) > 0 ? 1 : 0
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = var.read_only_trusted_principal_arns
    }
  }
}

resource "aws_iam_role" "read_only" {
  count                = length(var.read_only_trusted_principal_arns) > 0 ? 1 : 0
  name                 = "${local.name}-read-only"
  path                 = var.path
  description          = "lbprov plan (dry run): reads only"
  assume_role_policy   = data.aws_iam_policy_document.read_only_trust[0].json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "read_only" {
  count      = length(var.read_only_trusted_principal_arns) > 0 ? 1 : 0
  role       = aws_iam_role.read_only[0].name
  policy_arn = aws_iam_policy.read_only.arn
}
