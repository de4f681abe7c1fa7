# Every role of the `jwt` mount; each result says which API Management instance's managed
# identity the role is bound to, if any.
list "apim_vault_azure_role" "jwt" {
  provider = apim
  config {
    backend = "jwt"
  }
}

# Only the roles an instance's identities log in with.
list "apim_vault_azure_role" "contoso" {
  provider = apim
  config {
    backend           = "jwt"
    api_management_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apis/providers/Microsoft.ApiManagement/service/contoso-apim"
  }
}
