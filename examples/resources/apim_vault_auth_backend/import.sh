# The import ID is the mount path.
terraform import apim_vault_auth_backend.entra jwt
