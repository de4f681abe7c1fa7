# The role the APIM instance's system-assigned identity logs in with. Plan reads the
# identity's object ID and tenant from Azure Resource Manager.
resource "apim_vault_azure_role" "orders" {
  name              = "orders-apim"
  backend           = apim_vault_auth_backend.entra.path
  api_management_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apis/providers/Microsoft.ApiManagement/service/contoso-apim"
  audience          = "api://vault-apim"

  token_policies = ["orders-reader"]

  # The defaults fit the gateway's single-use logins (one login and one read per fetch):
  # token_type              = "batch" # not stored by Vault; never renewed, no child tokens
  # token_no_default_policy = true    # only token_policies, not Vault's `default` policy
  # token_ttl               = 300     # a binding's cache_ttl must not exceed it
}
