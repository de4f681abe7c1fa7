terraform {
  required_providers {
    apim = {
      source = "apimvault/apim"
    }
  }
}

# Settings may come from the environment instead: VAULT_ADDR, VAULT_TOKEN, ARM_TENANT_ID...
provider "apim" {
  vault {
    address = "https://vault.example.com:8200"
    # token from VAULT_TOKEN, or log in with a CI OIDC token:
    # auth_login_jwt {
    #   mount = "jwt"
    #   role  = "terraform"
    # }
  }

  azure {
    subscription_id = "00000000-0000-0000-0000-000000000000"
    tenant_id       = "00000000-0000-0000-0000-000000000000"
    use_oidc        = true
  }
}
