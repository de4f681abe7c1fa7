import {
  to = apim_vault_auth_backend.entra
  identity = {
    path = "jwt"
  }
}
