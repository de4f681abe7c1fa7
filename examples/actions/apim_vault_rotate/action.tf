# The new API key arrives as an ephemeral value: it is written to Vault as a new version of
# the secret and never stored in plan or state.
variable "orders_api_key" {
  type      = string
  ephemeral = true
  sensitive = true
}

action "apim_vault_rotate" "orders_api_key" {
  config {
    api_management_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apim/providers/Microsoft.ApiManagement/service/apim-prod"
    kv {
      path = "kv/data/orders/backend"
      data = { api_key = var.orders_api_key }
    }
  }
}

# terraform apply -invoke=action.apim_vault_rotate.orders_api_key

# A database static role rotated whenever `input` below changes (an apply that updates it
# triggers the action), bumping the bindings of one API only.
action "apim_vault_rotate" "orders_db" {
  config {
    api_management_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apim/providers/Microsoft.ApiManagement/service/apim-prod"
    api_ids           = ["orders"]
    database_static_role {
      mount = "database"
      name  = "orders"
    }
  }
}

resource "terraform_data" "orders_db_rotation" {
  input = "2026-q4"
  lifecycle {
    action_trigger {
      events  = [after_update]
      actions = [action.apim_vault_rotate.orders_db]
    }
  }
}
