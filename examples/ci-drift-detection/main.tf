# Drift detection for CI: `terraform plan -detailed-exitcode` exits 2 when Vault no longer
# matches this configuration, and the `check` blocks flag credentials about to expire.
# See docs/guides/drift-detection-in-ci.md for the pipeline around it.

terraform {
  required_version = ">= 1.10"
  required_providers {
    apim = {
      source = "apimvault/apim"
    }
  }
}

# VAULT_ADDR and VAULT_TOKEN (or `auth_login_jwt` with the CI's OIDC token) come from the
# pipeline. Listing leases needs `list` and `sudo` on sys/leases/lookup/<prefix>*.
provider "apim" {}

variable "lease_prefix" {
  description = "The leases to watch, e.g. the database credentials the APIM gateway reads."
  type        = string
  default     = "database/creds/orders/"
}

variable "min_ttl_seconds" {
  description = "Fail the check when a lease has less than this many seconds left."
  type        = number
  default     = 86400
}

# A managed object: an out-of-band edit shows as a change (exit code 2).
resource "apim_vault_policy" "orders_reader" {
  name = "orders-reader"
  rule {
    path         = "secret/data/orders/*"
    capabilities = ["read"]
  }
}

data "apim_vault_lease" "watched" {
  prefix        = var.lease_prefix
  ttl_threshold = var.min_ttl_seconds
}

check "leases_outlive_the_threshold" {
  assert {
    condition     = data.apim_vault_lease.watched.min_ttl == null || data.apim_vault_lease.watched.min_ttl >= var.min_ttl_seconds
    error_message = "Leases under ${var.lease_prefix} expire within ${var.min_ttl_seconds} seconds (first at ${coalesce(data.apim_vault_lease.watched.expires_soonest, "?")}): ${join(", ", data.apim_vault_lease.watched.below_threshold)}"
  }
}

# `min_ttl` and `ttl` count down: an output holding them would change on every plan (and
# `plan -detailed-exitcode` would exit 2), so outputs keep to values that change only when a
# lease does.
output "lease_report" {
  value = {
    count           = data.apim_vault_lease.watched.lease_count
    expires_soonest = data.apim_vault_lease.watched.expires_soonest
  }
}
