# Every ACL policy of the provider's Vault (but the built-in `root` and `default`).
list "apim_vault_policy" "all" {
  provider = apim
}

# Only the policies of one team.
list "apim_vault_policy" "orders" {
  provider = apim
  config {
    name_prefix = "orders-"
  }
}
