# A JWT mount made by the Vault provider must trust the issuer of the APIM instance's
# managed-identity tokens (version 1): check it before any binding relies on it.
check "apim_tokens_are_trusted" {
  assert {
    condition     = vault_jwt_auth_backend.apim.bound_issuer == provider::apim::entra_issuer(var.tenant_id, 1, "public")
    error_message = "The JWT mount does not trust the APIM instance's tokens: set bound_issuer to ${provider::apim::entra_issuer(var.tenant_id, 1, "public")}."
  }
}
