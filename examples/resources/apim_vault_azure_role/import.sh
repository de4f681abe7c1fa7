# The import ID is `<backend>/<name>`, or the role's API path as the Vault provider's
# `vault_jwt_auth_backend_role` names it: `auth/<backend>/role/<name>`. Vault does not record
# which APIM instance a role is for: the import finds it through Azure Resource Manager (the
# instance of the provider's subscription whose managed identity the role is bound to).
terraform import apim_vault_azure_role.orders jwt/orders-apim
terraform import apim_vault_azure_role.orders auth/jwt/role/orders-apim
