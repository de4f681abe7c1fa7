# The import ID is `<backend>/<name>`, or the role's API path as the Vault provider's
# `vault_jwt_auth_backend_role` names it: `auth/<backend>/role/<name>`. Vault does not record
# which APIM instance a role is for, so an imported role holds `principal_id` and
# `tenant_id`; a configuration that names `api_management_id` instead plans that one
# attribute once (an update that writes nothing new to Vault).
terraform import apim_vault_azure_role.orders jwt/orders-apim
terraform import apim_vault_azure_role.orders auth/jwt/role/orders-apim
