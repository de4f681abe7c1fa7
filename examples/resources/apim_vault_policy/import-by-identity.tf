import {
  to = apim_vault_policy.orders
  identity = {
    name = "orders-reader"
  }
}
