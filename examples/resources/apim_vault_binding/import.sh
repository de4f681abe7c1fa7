# The import ID is `<api_management_id>/vaultBindings/<name>`.
terraform import apim_vault_binding.orders /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apis/providers/Microsoft.ApiManagement/service/contoso-apim/vaultBindings/orders
