# Every JWT/OIDC auth mount of the provider's Vault.
list "apim_vault_auth_backend" "all" {
  provider = apim
}
