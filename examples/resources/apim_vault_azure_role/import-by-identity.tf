import {
  to = apim_vault_azure_role.orders
  identity = {
    backend = "jwt"
    name    = "orders-apim"
  }
}
