"""The distributed sender across hosts (network namespaces) in bad weather."""
