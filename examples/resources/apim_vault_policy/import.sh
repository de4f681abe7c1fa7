# The import ID is the policy name.
terraform import apim_vault_policy.orders orders-reader
