# Composing the provider with an APIM instance managed elsewhere (for example by
# hashicorp/azurerm: api_management_id = azurerm_api_management.main.id).
terraform {
  required_providers {
    apim = {
      source = "apimvault/apim"
    }
  }
}

provider "apim" {}

variable "api_management_id" {
  type = string
}

variable "tenant_id" {
  type = string
}

variable "discovery_ca_pem" {
  description = "CA of the Entra discovery endpoint, when it uses a private CA (the emulator); null for Azure."
  type        = string
  default     = null
}

resource "apim_vault_auth_backend" "entra" {
  path                  = "apim"
  tenant_id             = var.tenant_id
  oidc_discovery_ca_pem = var.discovery_ca_pem
}

module "secrets" {
  source            = "./modules/apim-vault-secrets"
  api_management_id = var.api_management_id
  auth_backend      = apim_vault_auth_backend.entra.path
  secrets = {
    orders-backend = {
      api_id       = "orders-api"
      secret_path  = "kv/data/orders/backend"
      secret_field = "api_key"
      header       = "X-Api-Key"
    }
    orders-audit = {
      api_id       = "orders-api"
      secret_path  = "kv/data/orders/audit"
      secret_field = "token"
      header       = "X-Audit-Token"
      cache_ttl    = 60
    }
  }
}

output "bindings" {
  value = module.secrets.bindings
}
