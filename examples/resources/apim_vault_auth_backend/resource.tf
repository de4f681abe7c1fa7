# Trust the managed-identity tokens (version 1) of an Entra tenant: the discovery URL and the
# issuer, https://sts.windows.net/<tenant>/, are derived for the provider's Azure environment.
resource "apim_vault_auth_backend" "entra" {
  path        = "jwt"
  description = "Entra ID tokens of API Management instances"
  tenant_id   = "72f988bf-86f1-41af-91ab-2d7cd011db47"

  default_lease_ttl = 900
  max_lease_ttl     = 3600
}
