# The orders API fetches its backend's API key from Vault at request time and sends it as
# the X-Api-Key header. The secret is cached by the gateway for at most 5 minutes. The role
# and the auth mount are the ones of the apim_vault_azure_role and apim_vault_auth_backend
# examples: referencing them orders their creation before the binding.
resource "apim_vault_binding" "orders" {
  api_management_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apis/providers/Microsoft.ApiManagement/service/contoso-apim"
  name              = "orders"
  role              = apim_vault_azure_role.orders.name
  backend           = apim_vault_auth_backend.entra.path
  audience          = "api://vault-apim"

  secret_path  = "kv/data/orders/backend"
  secret_field = "api_key"
  api_id       = "orders-api"
  cache_ttl    = 300

  inject {
    header = "X-Api-Key"
  }
}
