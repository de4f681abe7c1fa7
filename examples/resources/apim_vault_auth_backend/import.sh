# The import ID is the mount path (as for the Vault provider's `vault_jwt_auth_backend`), or
# its API path `auth/<path>`.
terraform import apim_vault_auth_backend.entra jwt
terraform import apim_vault_auth_backend.entra auth/jwt
