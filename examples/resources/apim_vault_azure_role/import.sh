# The import ID is `<backend>/<name>`. Vault does not record which APIM instance a role is
# for, so an imported role holds `principal_id` and `tenant_id`.
terraform import apim_vault_azure_role.orders jwt/orders-apim
