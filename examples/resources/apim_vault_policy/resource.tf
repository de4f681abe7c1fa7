# From rule blocks: the provider renders the policy document.
resource "apim_vault_policy" "orders" {
  name = "orders-reader"

  rule {
    path         = "kv/data/orders/*"
    capabilities = ["read"]
    description  = "Secrets of the orders API"
  }

  rule {
    path         = "kv/metadata/orders/*"
    capabilities = ["list"]
  }
}

# From a policy document written by hand.
resource "apim_vault_policy" "audit_reader" {
  name   = "audit-reader"
  policy = <<-EOT
    path "sys/audit" {
      capabilities = ["read", "sudo"]
    }
  EOT
}
