# Every binding of an instance, managed by a configuration or not.
list "apim_vault_binding" "contoso" {
  provider = apim
  config {
    api_management_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apis/providers/Microsoft.ApiManagement/service/contoso-apim"
  }
}

# The bindings of one API only.
list "apim_vault_binding" "orders" {
  provider = apim
  limit    = 20
  config {
    api_management_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apis/providers/Microsoft.ApiManagement/service/contoso-apim"
    api_id            = "orders-api"
  }
}
