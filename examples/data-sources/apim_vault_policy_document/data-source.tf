data "apim_vault_policy_document" "payments" {
  rule {
    path         = "kv/data/payments/*"
    capabilities = ["read"]
    description  = "Secrets of the payments API"
  }

  rule {
    path         = "database/creds/payments"
    capabilities = ["read"]
  }
}

resource "apim_vault_policy" "payments" {
  name   = "payments"
  policy = data.apim_vault_policy_document.payments.hcl
}
