# The import ID is the policy name (as for the Vault provider's `vault_policy`), or its API
# path `sys/policies/acl/<name>`.
terraform import apim_vault_policy.orders orders-reader
terraform import apim_vault_policy.orders sys/policies/acl/orders-reader
