# One APIM instance, many secrets: a Vault policy and role per API, and a binding per secret.
terraform {
  required_providers {
    apim = {
      source = "apimvault/apim"
    }
  }
}

variable "api_management_id" {
  description = "ARM ID of the API Management instance (e.g. azurerm_api_management.main.id)."
  type        = string
}

variable "auth_backend" {
  description = "Mount path of the apim_vault_auth_backend that trusts the instance's tenant."
  type        = string
}

variable "audience" {
  description = "Token audience the gateway asks Entra ID for."
  type        = string
  default     = "api://vault-apim"
}

variable "secrets" {
  description = "Secrets to inject, by binding name."
  type = map(object({
    api_id       = string
    secret_path  = string
    secret_field = string
    header       = string
    cache_ttl    = optional(number, 300)
  }))
}

locals {
  apis = toset([for s in var.secrets : s.api_id])
}

# Least privilege: each API's role may read exactly the paths of that API's secrets.
data "apim_vault_policy_document" "api" {
  for_each = local.apis

  dynamic "rule" {
    for_each = { for name, s in var.secrets : name => s if s.api_id == each.key }
    content {
      path         = rule.value.secret_path
      capabilities = ["read"]
      description  = "binding ${rule.key}"
    }
  }
}

resource "apim_vault_policy" "api" {
  for_each = local.apis
  name     = "apim-${each.key}"
  policy   = data.apim_vault_policy_document.api[each.key].hcl
}

resource "apim_vault_azure_role" "api" {
  for_each          = local.apis
  name              = "apim-${each.key}"
  backend           = var.auth_backend
  api_management_id = var.api_management_id
  audience          = var.audience
  token_policies    = [apim_vault_policy.api[each.key].name]
  token_ttl         = 900
}

resource "apim_vault_binding" "secret" {
  for_each          = var.secrets
  api_management_id = var.api_management_id
  name              = each.key
  role              = apim_vault_azure_role.api[each.value.api_id].name
  backend           = var.auth_backend
  audience          = var.audience
  secret_path       = each.value.secret_path
  secret_field      = each.value.secret_field
  api_id            = each.value.api_id
  cache_ttl         = each.value.cache_ttl

  inject {
    header = each.value.header
  }
}

output "bindings" {
  description = "Binding IDs by name."
  value       = { for name, b in apim_vault_binding.secret : name => b.id }
}
