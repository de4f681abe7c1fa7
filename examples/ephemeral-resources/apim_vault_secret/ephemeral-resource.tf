# A deployment token kept in KV version 2 configures a second provider instance. The token
# is read at plan and at apply; it is never written to the plan file or the state.
ephemeral "apim_vault_secret" "deployer" {
  path = "secret/ci/deployer" # or "secret/data/ci/deployer"
}

provider "apim" {
  alias = "deployer"
  vault {
    token = ephemeral.apim_vault_secret.deployer.data["token"]
  }
}

resource "apim_vault_policy" "orders_reader" {
  provider = apim.deployer
  name     = "orders-reader"
  rule {
    path         = "secret/data/orders/*"
    capabilities = ["read"]
  }
}

# Dynamic database credentials for a one-off migration: the lease is renewed while the
# migration runs and revoked when Terraform is done with it.
variable "database_host" {
  type    = string
  default = "orders-db.internal"
}

variable "database_port" {
  type    = number
  default = 5432
}

ephemeral "apim_vault_secret" "orders_db" {
  path = "database/creds/orders"
}

resource "terraform_data" "migration" {
  provisioner "local-exec" {
    command = "psql -X -h ${var.database_host} -p ${var.database_port} -d postgres -c 'select current_user'"
    environment = {
      PGUSER     = ephemeral.apim_vault_secret.orders_db.data["username"]
      PGPASSWORD = ephemeral.apim_vault_secret.orders_db.data["password"]
    }
  }
}
