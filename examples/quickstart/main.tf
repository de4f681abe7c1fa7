# The quickstart: an APIM API that fetches its backend's API key from Vault at request time.
#
# `scripts/quickstart` runs it against a local OpenBao and the APIM emulator. Against real
# Azure and Vault, only the provider settings change (VAULT_ADDR, VAULT_TOKEN, ARM_* — see
# docs/guides/real-azure-and-vault.md) and `discovery_ca_pem` stays null.

terraform {
  required_providers {
    apim = {
      source = "apimvault/apim"
    }
  }
}

provider "apim" {}

variable "api_management_id" {
  description = "ARM ID of the API Management instance (e.g. azurerm_api_management.main.id)."
  type        = string
}

variable "tenant_id" {
  description = "Entra tenant of the instance's managed identity."
  type        = string
}

variable "api_id" {
  description = "The API that gets the secret."
  type        = string
  default     = "orders-api"
}

variable "secret_path" {
  description = "Vault API path of the secret (KV version 2: <mount>/data/<name>)."
  type        = string
  default     = "secret/data/orders/backend"
}

variable "discovery_ca_pem" {
  description = "CA of the Entra discovery endpoint when it is private (the emulator); null for Azure."
  type        = string
  default     = null
}

# Vault trusts the managed-identity tokens of the tenant.
resource "apim_vault_auth_backend" "entra" {
  path                  = "apim"
  description           = "Entra ID tokens of API Management"
  tenant_id             = var.tenant_id
  oidc_discovery_ca_pem = var.discovery_ca_pem
}

# Least privilege: read on exactly the secret's path.
data "apim_vault_policy_document" "orders" {
  rule {
    path         = var.secret_path
    capabilities = ["read"]
    description  = "The orders API's backend key"
  }
}

resource "apim_vault_policy" "orders" {
  name   = "apim-orders"
  policy = data.apim_vault_policy_document.orders.hcl
}

# The role the instance's identity logs in with; plan resolves the identity through ARM.
resource "apim_vault_azure_role" "orders" {
  name              = "apim-orders"
  backend           = apim_vault_auth_backend.entra.path
  api_management_id = var.api_management_id
  audience          = "api://vault-apim"
  token_policies    = [apim_vault_policy.orders.name]
  token_ttl         = 900
}

# The API fetches the secret at request time and sends it as X-Api-Key.
resource "apim_vault_binding" "orders" {
  api_management_id = var.api_management_id
  name              = "orders"
  role              = apim_vault_azure_role.orders.name
  backend           = apim_vault_auth_backend.entra.path
  audience          = apim_vault_azure_role.orders.audience
  secret_path       = var.secret_path
  secret_field      = "api_key"
  api_id            = var.api_id
  cache_ttl         = 300

  inject {
    header = "X-Api-Key"
  }
}

output "binding_id" {
  value = apim_vault_binding.orders.id
}

output "role_bound_claims" {
  value = apim_vault_azure_role.orders.bound_claims
}
