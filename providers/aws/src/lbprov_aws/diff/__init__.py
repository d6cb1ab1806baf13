"""Desired vs observed -> the Plan's changes (pure given what observe.py read).

``planner.py`` orders the whole plan; ``nlb.py`` and ``classic.py`` diff each kind of load balancer;
``node_rules.py`` is the algebra of the cluster's shared node security group rules (used by the
diff and, under the per-group lock, by apply); ``common.py`` holds the plan builder and ownership.
"""
