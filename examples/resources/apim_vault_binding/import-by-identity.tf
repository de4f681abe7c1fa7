import {
  to = apim_vault_binding.orders
  identity = {
    api_management_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apis/providers/Microsoft.ApiManagement/service/contoso-apim"
    api_id            = "orders-api"
    name              = "orders"
  }
}
