# Every database credential Vault issued for the orders service, at any depth under the
# prefix. Reading it only looks leases up: nothing is renewed or revoked.
data "apim_vault_lease" "orders_db" {
  prefix        = "database/creds/orders/"
  ttl_threshold = 3600 # list (and warn about) credentials that expire within an hour
}

# Fail the run when a credential expires within the hour.
check "orders_db_credentials" {
  assert {
    condition     = length(data.apim_vault_lease.orders_db.below_threshold) == 0
    error_message = "Database credentials of the orders service expire within an hour: ${join(", ", data.apim_vault_lease.orders_db.below_threshold)}"
  }
}

# `min_ttl` and `ttl` count down: an output holding them would change on every plan (and
# `plan -detailed-exitcode` would exit 2), so outputs keep to values that change only when a
# lease does.
output "orders_db_leases" {
  value = {
    count           = data.apim_vault_lease.orders_db.lease_count
    expires_soonest = data.apim_vault_lease.orders_db.expires_soonest
  }
}
