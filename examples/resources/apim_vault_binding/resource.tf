# The orders API fetches its backend's API key from Vault at request time and sends it as
# the X-Api-Key header. The secret is cached by the gateway for at most 5 minutes. The role
# and the auth mount are the ones of the apim_vault_azure_role and apim_vault_auth_backend
# examples: referencing them orders their creation before the binding.
#
# The binding lives in a block the provider manages in the inbound policy of `api_id`, right
# after `<base />`, shared with the API's other bindings; the rest of the policy is left as it
# is. After rotating the secret in Vault, bump `rotation` so that the gateway fetches it on the
# next request instead of when its cache expires.
#
# When the gateway cannot get the secret, the caller gets a bare 502 and the gateway records
# why in a `trace` (source `apim-vault-binding`). With `logger_id` naming an APIM logger (for
# example `azurerm_api_management_logger.vault.id`), each failure is also an Event Hubs event
# or an Application Insights metric, depending on the logger's type.
resource "apim_vault_binding" "orders" {
  api_management_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apis/providers/Microsoft.ApiManagement/service/contoso-apim"
  api_id            = "orders-api"
  name              = "orders"
  role              = apim_vault_azure_role.orders.name
  backend           = apim_vault_auth_backend.entra.path
  audience          = "api://vault-apim"

  secret_path  = "kv/data/orders/backend"
  secret_field = "api_key"
  cache_ttl    = 300
  rotation     = 0

  inject {
    header = "X-Api-Key"
  }
}
