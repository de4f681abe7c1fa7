# The quickstart: Vault policies for an APIM API's secrets, applied against a local OpenBao.
# `scripts/quickstart` sets VAULT_ADDR and VAULT_TOKEN; against a real Vault, set them (or the
# provider block's `vault` settings) and run `terraform apply` here.

terraform {
  required_providers {
    apim = {
      source = "apimvault/apim"
    }
  }
}

provider "apim" {}

variable "api_name" {
  description = "The APIM API whose secrets the policy grants."
  type        = string
  default     = "orders"
}

data "apim_vault_policy_document" "api" {
  rule {
    path         = "kv/data/${var.api_name}/*"
    capabilities = ["read"]
    description  = "Secrets the ${var.api_name} API injects into backend calls"
  }
}

resource "apim_vault_policy" "api" {
  name   = "apim-${var.api_name}"
  policy = data.apim_vault_policy_document.api.hcl
}

output "policy_name" {
  value = apim_vault_policy.api.name
}

output "policy_hcl" {
  value = apim_vault_policy.api.hcl
}
