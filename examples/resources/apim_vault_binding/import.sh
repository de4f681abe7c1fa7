# The import ID is the binding's `id`: `<api_management_id>/apis/<api>/vaultBindings/<name>`.
terraform import apim_vault_binding.orders /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apis/providers/Microsoft.ApiManagement/service/contoso-apim/apis/orders-api/vaultBindings/orders
