# Fail the plan when a policy written elsewhere stops granting what a binding reads.
resource "vault_policy" "orders" {
  name   = "orders-read"
  policy = file("${path.module}/orders-read.hcl")

  lifecycle {
    precondition {
      condition     = provider::apim::policy_grants(file("${path.module}/orders-read.hcl"), "kv/data/orders/backend", "read")
      error_message = "orders-read must grant read on kv/data/orders/backend: the orders binding reads it."
    }
  }
}
